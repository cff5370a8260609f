/**
 * The messages between the main thread and the load workers. Every command carries an `id`; the
 * worker answers each with a reply of the same id (or an error), so the main thread can await them.
 */

/** One group of watch streams a worker opens: all on one server, one stream per context id listed. */
export interface WatchAssignment {
  /** `host:port` of the server. */
  readonly address: string;
  /** Label of the server in the results ("A", "B", "bare"). */
  readonly server: string;
  /** A context id per stream (repeats allowed: several streams on one context). */
  readonly contextIds: readonly string[];
}

/** Which RPC the watchers use: a WatchContext stream per watch, or Watch streams holding many. */
export type WatchRpc = "watch-context" | "watch";

export type WorkerCommand =
  | {
      readonly kind: "open-watchers";
      readonly assignments: readonly WatchAssignment[];
      /** Most streams on one channel (HTTP/2 connection); with rpc "watch", the watches of its one Watch stream. */
      readonly streamsPerChannel: number;
      readonly rpc: WatchRpc;
      /** Streams being opened at once per worker, so start-up does not stampede the server. */
      readonly openConcurrency: number;
      readonly principal: string;
    }
  | {
      readonly kind: "write";
      readonly address: string;
      readonly contextIds: readonly string[];
      readonly principal: string;
      /** Commits per second (open loop: sent on schedule whether or not earlier ones finished). */
      readonly rate: number;
      readonly channels: number;
      /** Epoch ms: first commit, start and end of the measured window (the end is also the last commit). */
      readonly startAtMs: number;
      readonly measureFromMs: number;
      readonly measureToMs: number;
      /** Commits in flight beyond which a scheduled commit is skipped (counted), so a stalled server cannot pile up unbounded work. */
      readonly maxInFlight: number;
    }
  | { readonly kind: "watch-window"; readonly measureFromMs: number; readonly measureToMs: number }
  | { readonly kind: "collect" }
  | { readonly kind: "close" };

export type WorkerRequest = WorkerCommand & { readonly id: number };

/** How the watch streams of one worker fared. */
export interface WatchResults {
  /** Per server label: the encoded µs histogram of deliveries whose stamp fell in the window. */
  readonly histograms: Readonly<Record<string, string>>;
  /** Deliveries with a stamp in the window, per server label. */
  readonly delivered: Readonly<Record<string, number>>;
  /** Deliveries outside the window (warm-up, drain), not in the histograms. */
  readonly outsideWindow: number;
  /** Revisions seen twice, or out of order, on one stream (the watch guarantees say 0). */
  readonly repeated: number;
  /** Revisions skipped on one stream (0 by the same guarantees). */
  readonly gaps: number;
  /** Streams that ended or failed, by gRPC status name. */
  readonly endedByCode: Readonly<Record<string, number>>;
  /** Smallest and largest `events` message seen, in bytes. */
  readonly payloadBytes: { readonly min: number; readonly max: number };
  /** Watches still open: WatchContext streams, or watches of Watch streams. */
  readonly openStreams: number;
}

/** How one writer fared. */
export interface WriteResults {
  /** Encoded µs histogram of UpdateSharedState round trips in the window. */
  readonly commitHistogram: string;
  /** Encoded µs histogram of how late each commit left against its schedule (the writer's own lag). */
  readonly lagHistogram: string;
  /** Successful commits whose stamp fell in the window, per context id. */
  readonly committedInWindow: Readonly<Record<string, number>>;
  readonly sent: number;
  readonly skipped: number;
  readonly errorsByCode: Readonly<Record<string, number>>;
}

export interface OpenResults {
  readonly opened: number;
  readonly failedByCode: Readonly<Record<string, number>>;
}

export type WorkerReply =
  | { readonly id: number; readonly ok: true; readonly value: OpenResults | WriteResults | WatchResults | null }
  | { readonly id: number; readonly ok: false; readonly error: string };
