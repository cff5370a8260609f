/**
 * Messages between the driver's main thread and its unary load workers (unary-worker.ts). Every
 * command carries an `id` and is answered by a reply with the same id.
 */
import type { GhzConfig } from "./scenario-config.js";

/** A seeded id (pair) a request template may refer to. */
export interface SeedItem {
  readonly contextId: string;
  readonly participantId?: string;
}

/** One load run of one scenario on one worker. */
export interface UnaryRun {
  readonly kind: "run";
  /** `host:port` of the server under test. */
  readonly address: string;
  readonly config: GhzConfig;
  /** This worker's share of the seeded ids (empty when the template needs none). */
  readonly items: readonly SeedItem[];
  /** Each item serves one request only (delete, remove): the worker stops when they run out. */
  readonly consume: boolean;
  /**
   * open: requests leave on a fixed schedule (`rate` per second for this worker) whether or not
   * earlier ones finished, and latency runs from the scheduled time (coordinated omission corrected);
   * closed: `concurrency` requests in flight, each sent when the previous one finishes.
   */
  readonly mode: "open" | "closed";
  readonly rate: number;
  readonly concurrency: number;
  /** Channels (HTTP/2 connections) this worker spreads its requests over. */
  readonly channels: number;
  /** Epoch ms of the first request; warm-up, then the measured window. */
  readonly startAtMs: number;
  readonly warmupMs: number;
  readonly measureMs: number;
  readonly workerId: number;
  /** Open loop: scheduled requests beyond this many in flight are skipped (and counted). */
  readonly maxInFlight: number;
}

export type UnaryCommand = UnaryRun | { readonly kind: "close" };
export type UnaryRequest = UnaryCommand & { readonly id: number };

/** What one worker measured in the window. */
export interface UnaryResults {
  /** Encoded µs HDR histogram of successful calls. */
  readonly histogram: string;
  /** Counts per log-spaced latency bucket (see ghz-report.ts), all calls in the window. */
  readonly buckets: readonly number[];
  readonly ok: number;
  /** Failed calls in the window by status name, and by "STATUS: message" (ghz's errorDistribution). */
  readonly statusCodes: Readonly<Record<string, number>>;
  readonly errors: Readonly<Record<string, number>>;
  /** Requests sent in all (warm-up included). */
  readonly sent: number;
  /** Open loop: scheduled requests skipped because too many were in flight. */
  readonly skipped: number;
  /** Requests not sent because the consumable ids ran out. */
  readonly exhausted: number;
  /** Latest schedule lag of the sender itself (open loop), ms at p99: a busy driver shows here. */
  readonly lagP99Ms: number;
}

export type UnaryReply =
  | { readonly id: number; readonly ok: true; readonly value: UnaryResults | null }
  | { readonly id: number; readonly ok: false; readonly error: string };
