/**
 * The vocabulary of WatchContext between the transport and the watch hub: what a stream receives,
 * how the hub writes to it, and the parts of the store the hub reads. No gRPC here: the transport
 * maps these messages to WatchContextResponse.
 */
import type { Context } from "../domain/context.js";
import type { ContextEvent } from "../domain/event.js";
import type { Participant } from "../domain/participant.js";
import type { ContextStore } from "./ports.js";

/** One message of a watch stream. */
export type WatchMessage =
  /** The FULL context (shared state filled) and its participants, all at `revision`. */
  | { readonly kind: "snapshot"; readonly context: Context; readonly participants: readonly Participant[]; readonly revision: number }
  /** Every event of exactly one revision, in write order. */
  | { readonly kind: "events"; readonly revision: number; readonly events: readonly ContextEvent[] }
  /** The stream is alive and has delivered everything up to `revision`. */
  | { readonly kind: "progress"; readonly revision: number };

/** Where the hub writes one stream. */
export interface WatchSink {
  /**
   * Writes a message. Returns undefined when the transport can take more at once, otherwise a
   * promise that resolves when it can (back-pressure); throws or rejects once the call is gone.
   * The synchronous answer matters: a revision is written to every watcher of its context, and a
   * promise per write is a microtask per stream.
   */
  send(message: WatchMessage): Promise<void> | undefined;
  /**
   * Aborted when the client cancels or the deadline passes: the watcher then lets go of everything.
   * A multiplexed stream gives none (an AbortSignal and its listener per watch cost a KB of a
   * watch's few) and ends its watches through `started`'s cancel instead.
   */
  readonly signal?: AbortSignal;
  /**
   * Called once the watch has started (request valid, READ checked, not compacted) and joined its
   * context's feed, before its first message, with what ends it (`abort(reason)`, as an abort of
   * the signal would): a multiplexed stream answers `created` here, so a refused create never gets one.
   */
  started?(watch: StartedWatch): void;
  /** Called once when the started watch ends, however it ends (required of an EndingSink). */
  ended?(outcome: WatchOutcome): void;
}

/** How a watch ended: OK (after CONTEXT_DELETED), or the error it ends with. */
export type WatchOutcome = { readonly ok: true } | { readonly ok: false; readonly error: unknown };

/**
 * A sink that hears its watch's end itself (WatchUseCase.open): the hub keeps no promise per watch
 * for it — a promise, its reactions and their closures were a fifth of a multiplexed watch's heap.
 */
export interface EndingSink extends WatchSink {
  ended(outcome: WatchOutcome): void;
}

/** A watch that has started, as its sink may end it. */
export interface StartedWatch {
  readonly contextId: string;
  abort(reason: unknown): void;
}

/** A WatchContext request, as the transport decoded it. */
export interface WatchRequest {
  readonly contextId: string;
  /** First revision wanted; 0 = from now (or from after the snapshot). */
  readonly startRevision: number;
  readonly sendSnapshot: boolean;
  /** 0 = the default. */
  readonly progressIntervalMs: number;
}

/** All events of one revision: the unit every watcher accepts or drops whole (never split). */
export interface RevisionBatch {
  readonly revision: number;
  readonly events: readonly ContextEvent[];
}

/** What the hub reads from the store. */
export type WatchStore = Pick<ContextStore, "getContext" | "findMember" | "listParticipants" | "listEvents" | "heads">;

/** The hub's tunables (config.ts), with the defaults of the contract. */
export interface WatchHubOptions {
  /** Revisions a watcher may have queued unsent before it is ended with SLOW_CONSUMER. */
  readonly queueRevisions: number;
  /** How often the hub compares the database heads of watched contexts with what it has seen. */
  readonly reconcileMs: number;
  /** Events per database read (a revision is never split, so a read may return a little more). */
  readonly readBatchEvents?: number;
  /** Reads the events a ring carries (the store's wire form); without it, rings' events are ignored and read from the log. */
  readonly decodeEvents?: (wire: string) => readonly ContextEvent[];
}

/** progress_interval_ms: 0 means this; other values must fall within the bounds below. */
export const DEFAULT_PROGRESS_INTERVAL_MS = 10_000;
export const MIN_PROGRESS_INTERVAL_MS = 100;
export const MAX_PROGRESS_INTERVAL_MS = 3_600_000;
/** A snapshot is retried this many times while writers keep moving the context under it. */
export const SNAPSHOT_ATTEMPTS = 20;
/** Events per database read unless the options say otherwise. */
export const DEFAULT_READ_BATCH_EVENTS = 500;
