/**
 * A WatchContext stream that survives disconnects: an async iterator of revisions that, when the
 * stream breaks (a server restart, a lost connection, SLOW_CONSUMER), opens a new one from the
 * last revision it delivered + 1, with backoff. The server guarantees ordered, unique, gap-free
 * revisions per stream; resuming at last + 1 carries that guarantee across streams.
 */
import { status } from "@grpc/grpc-js";
import type { Context } from "../../gen/mplp/context/v1/context_pb.js";
import type { ContextService } from "../../gen/mplp/context/v1/context_service_pb.js";
import type { ContextEvent } from "../../gen/mplp/context/v1/event_pb.js";
import type { Participant } from "../../gen/mplp/context/v1/participant_pb.js";
import type { ClientCallOptions, PromiseClient } from "../transport/grpc-client.js";
import { grpcErrorOf } from "./errors.js";
import { backoffDelay, retrying, sleep, type BackoffOptions, type RetryNotice } from "./retry.js";

/** What the iterator yields: the snapshot (when asked for) and then one item per revision. */
export type WatchUpdate =
  | { readonly kind: "snapshot"; readonly revision: bigint; readonly context: Context | undefined; readonly participants: readonly Participant[] }
  | { readonly kind: "events"; readonly revision: bigint; readonly events: readonly ContextEvent[] };

export interface WatchOptions {
  /**
   * The first revision wanted. Unset (or 0): the revision after the current one, read once with
   * GetContext before the first stream opens, so even a disconnect before the first event loses nothing.
   */
  readonly startRevision?: bigint | number;
  /** Start with the FULL context at a revision (only on the first stream; resumes need no snapshot). */
  readonly sendSnapshot?: boolean;
  /** Idle streams get a progress message this often (server default 10 s). */
  readonly progressIntervalMs?: number;
  /** Ends the watch: the iterator returns. */
  readonly signal?: AbortSignal;
  /** Backoff between reconnects; maxAttempts counts consecutive failures (default: never give up). */
  readonly backoff?: Partial<BackoffOptions>;
  /** Told before each reconnect: why, from which revision, after how long. */
  readonly onReconnect?: (notice: RetryNotice & { readonly fromRevision: bigint }) => void;
  /**
   * Told once a stream reopened after a break is accepted by a server (its response headers
   * arrived), with the revision it resumes from: the outage is over, even if no event follows yet.
   */
  readonly onResumed?: (resumed: { readonly fromRevision: bigint; readonly retries: number }) => void;
}

type ContextClient = PromiseClient<(typeof ContextService)["method"]>;

export const WATCH_BACKOFF: BackoffOptions = { initialMs: 100, maxMs: 5_000, multiplier: 2, maxAttempts: Infinity };

/**
 * "Now" pinned to a number: the revision after the context's current one (GetContext, retried
 * while the server is away). A watch opened with start_revision 0 whose stream breaks before its
 * first event could not say where to resume; one opened from this number can.
 */
export async function nextRevisionNow(
  client: ContextClient,
  contextId: string,
  backoff: BackoffOptions,
  signal: AbortSignal | undefined,
  callOptions: () => ClientCallOptions,
): Promise<bigint> {
  const { context } = await retrying(
    () => client.getContext({ contextId }, { ...callOptions(), ...(signal ? { signal } : {}) }),
    isResumable,
    { ...backoff, maxAttempts: Math.min(backoff.maxAttempts, 20) },
    signal,
  );
  return (context?.revision ?? 0n) + 1n;
}

/**
 * Whether a broken stream is worth reopening: the server went away (UNAVAILABLE, CANCELLED, or a transport
 * failure that carries no ErrorInfo because no handler produced it), or it ended a slow reader
 * (SLOW_CONSUMER: resume from where we are). Refusals — NOT_FOUND, PERMISSION_DENIED,
 * OUT_OF_RANGE/REVISION_COMPACTED — would only fail again.
 */
export function isResumable(error: unknown): boolean {
  const details = grpcErrorOf(error);
  if (details === undefined) return false;
  if (details.code === status.UNAVAILABLE) return true;
  // Callers check their own abort first, so a CANCELLED seen here came from the other side: a server
  // shutting down cancels the streams still open when its grace period ends.
  if (details.code === status.CANCELLED) return true;
  if (details.code === status.RESOURCE_EXHAUSTED) return details.reason === "SLOW_CONSUMER";
  return (details.code === status.INTERNAL || details.code === status.UNKNOWN) && details.reason === undefined;
}

/**
 * Watches `contextId` until the context is deleted (the server ends the stream OK after
 * CONTEXT_DELETED), `signal` aborts, or a failure that a reconnect cannot fix is thrown.
 */
export async function* watchContext(
  client: ContextClient,
  contextId: string,
  options: WatchOptions = {},
  callOptions: () => ClientCallOptions = () => ({}),
): AsyncGenerator<WatchUpdate, void, undefined> {
  const backoff: BackoffOptions = { ...WATCH_BACKOFF, ...options.backoff };
  const signal = options.signal;
  let snapshotWanted = options.sendSnapshot === true;
  let next = BigInt(options.startRevision ?? 0);
  if (next === 0n && !snapshotWanted) next = await nextRevisionNow(client, contextId, backoff, signal, callOptions);
  // A function, not a narrowed expression: the signal aborts while we await.
  const aborted = (): boolean => signal?.aborted === true;
  let failures = 0;
  // Retries since the last stream a server accepted: non-zero while reconnecting after a break.
  let retries = 0;
  while (!aborted()) {
    const from = next;
    const onHeaders =
      retries === 0 || options.onResumed === undefined
        ? undefined
        : () => {
            options.onResumed?.({ fromRevision: from, retries });
            retries = 0;
          };
    const stream = client.watchContext(
      {
        contextId,
        startRevision: snapshotWanted ? 0n : next,
        sendSnapshot: snapshotWanted,
        progressIntervalMs: options.progressIntervalMs ?? 0,
      },
      { ...callOptions(), ...(signal ? { signal } : {}), ...(onHeaders === undefined ? {} : { onHeaders }) },
    );
    try {
      for await (const { response } of stream) {
        failures = 0;
        if (response.case === "snapshot") {
          snapshotWanted = false;
          next = response.value.revision + 1n;
          yield { kind: "snapshot", revision: response.value.revision, context: response.value.context, participants: response.value.participants };
        } else if (response.case === "events") {
          // The server never repeats a revision on one stream; this guards the seam between streams.
          if (response.value.revision < next) continue;
          next = response.value.revision + 1n;
          yield { kind: "events", revision: response.value.revision, events: response.value.events };
        } else if (response.case === "progress" && !snapshotWanted) {
          // Progress names the last revision delivered: nothing newer was skipped, so it is safe to move to.
          if (response.value.revision + 1n > next) next = response.value.revision + 1n;
        }
      }
      return; // ended OK: the context was deleted
    } catch (error) {
      if (aborted()) return;
      failures++;
      if (!isResumable(error) || failures >= backoff.maxAttempts) throw error;
      retries++;
      const delayMs = backoffDelay(failures, backoff);
      options.onReconnect?.({ retry: failures, delayMs, error, fromRevision: next });
      try {
        await sleep(delayMs, signal);
      } catch {
        return; // aborted while waiting
      }
    }
  }
}
