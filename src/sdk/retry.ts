/**
 * Backoff and the retry policy: which calls may be sent again after a failure, and when.
 *
 * A call is retried only where sending it twice cannot do anything twice:
 * - reads (Get…, List…, Heartbeat) on UNAVAILABLE: they change nothing (a heartbeat only renews);
 * - CreateContext, AddParticipant, BatchAddParticipants and UpdateSharedState on UNAVAILABLE,
 *   because the SDK gives each one a `request_id` (unless the caller did): the server answers a
 *   repeat with the first result and applies nothing twice, even when the first attempt did commit
 *   and only its answer was lost;
 * - ABORTED (SYNC_CONFLICT) is never retried blindly: the change was computed from a stale state.
 *   `MplpClient.updateState` retries it by reading the state again and recomputing the change.
 * Everything else (UpdateContext, TransitionContext, DeleteContext, RemoveParticipant, …) fails at
 * once: repeating a delete or a transition whose answer was lost would report a misleading error.
 */
import { status } from "@grpc/grpc-js";
import { grpcErrorOf } from "./errors.js";

/** How long to wait between attempts: exponential with jitter, capped. */
export interface BackoffOptions {
  /** The first wait. Default 100 ms. */
  readonly initialMs: number;
  /** No wait is longer than this. Default 5 s. */
  readonly maxMs: number;
  /** Growth per attempt. Default 2. */
  readonly multiplier: number;
  /** Attempts in all, the first included; Infinity never gives up. Default 6 for calls. */
  readonly maxAttempts: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = Object.freeze({ initialMs: 100, maxMs: 5_000, multiplier: 2, maxAttempts: 6 });

/**
 * The wait before retry number `retry` (1 for the first retry). Jitter takes it anywhere in
 * [half, all] of the exponential step, so many clients cut off by one restart do not return in step.
 */
export function backoffDelay(retry: number, options: BackoffOptions = DEFAULT_BACKOFF, random: () => number = Math.random): number {
  const step = Math.min(options.maxMs, options.initialMs * options.multiplier ** Math.max(0, retry - 1));
  return Math.round(step / 2 + (random() * step) / 2);
}

/** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** UNAVAILABLE: the server could not be reached or went away; nothing says the call was refused. */
export function isUnavailable(error: unknown): boolean {
  return grpcErrorOf(error)?.code === status.UNAVAILABLE;
}

/** What a retry loop reports before it waits. */
export interface RetryNotice {
  readonly retry: number;
  readonly delayMs: number;
  readonly error: unknown;
}

/**
 * Runs `attempt` until it succeeds, `shouldRetry` says no, the attempts run out or `signal` aborts;
 * waits with backoff in between. The last error is thrown as it was.
 */
export async function retrying<T>(
  attempt: () => Promise<T>,
  shouldRetry: (error: unknown) => boolean,
  options: BackoffOptions = DEFAULT_BACKOFF,
  signal?: AbortSignal,
  onRetry?: (notice: RetryNotice) => void,
): Promise<T> {
  for (let retry = 1; ; retry++) {
    try {
      return await attempt();
    } catch (error) {
      if (retry >= options.maxAttempts || !shouldRetry(error) || signal?.aborted === true) throw error;
      const delayMs = backoffDelay(retry, options);
      onRetry?.({ retry, delayMs, error });
      await sleep(delayMs, signal);
    }
  }
}

/** Methods (by local name) that change nothing, so any number of attempts is one. */
export const READ_METHODS: ReadonlySet<string> = new Set([
  "getContext",
  "listContexts",
  "getContextStatistics",
  "getSharedState",
  "listContextEvents",
  "getParticipant",
  "listParticipants",
  "heartbeat",
]);

/** Writes the server deduplicates by `request_id` (24 h per principal): safe to repeat with the same id. */
export const REQUEST_ID_METHODS: ReadonlySet<string> = new Set(["createContext", "addParticipant", "batchAddParticipants", "updateSharedState"]);

/** Whether the SDK retries `method` on UNAVAILABLE (the policy at the top of this file). */
export function retriesOnUnavailable(method: string): boolean {
  return READ_METHODS.has(method) || REQUEST_ID_METHODS.has(method);
}
