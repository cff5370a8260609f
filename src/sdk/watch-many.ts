/**
 * Many contexts watched on one Watch stream that survives disconnects: an async iterator of every
 * watched context's revisions. Each context is a watch of the stream (watch_id = its place in the
 * list + 1); when the stream breaks (a server restart, a lost connection) a new one re-creates
 * every watch still open from its last delivered revision + 1, with backoff, and a watch ended
 * SLOW_CONSUMER is re-created the same way on the stream it was on. So each context's revisions
 * arrive exactly once and in order, as with `watch()`, for one stream's cost.
 *
 * A watch that cannot go on — its context deleted, READ lost, its history compacted — ends alone:
 * the iterator yields an `ended` item for it and goes on with the rest, and returns once none is left.
 */
import type { MessageInitShape } from "@bufbuild/protobuf";
import { status } from "@grpc/grpc-js";
import type { Context } from "../../gen/mplp/context/v1/context_pb.js";
import type { ContextService, WatchRequestSchema } from "../../gen/mplp/context/v1/context_service_pb.js";
import type { ContextEvent } from "../../gen/mplp/context/v1/event_pb.js";
import type { Participant } from "../../gen/mplp/context/v1/participant_pb.js";
import type { ClientCallOptions, PromiseClient } from "../transport/grpc-client.js";
import { RequestQueue } from "./request-queue.js";
import { backoffDelay, sleep, type BackoffOptions } from "./retry.js";
import { isResumable, nextRevisionNow, WATCH_BACKOFF, type WatchOptions } from "./watch.js";

/** What the iterator yields: per context, its snapshot (when asked), its revisions, and how it ended. */
export type ManyWatchUpdate =
  | { readonly kind: "snapshot"; readonly contextId: string; readonly revision: bigint; readonly context: Context | undefined; readonly participants: readonly Participant[] }
  | { readonly kind: "events"; readonly contextId: string; readonly revision: bigint; readonly events: readonly ContextEvent[] }
  /**
   * The watch of `contextId` ended for good: `CONTEXT_DELETED` (code 0, after its event), or the
   * code and reason of a refusal (PERMISSION_DENIED/FORBIDDEN, NOT_FOUND, OUT_OF_RANGE/REVISION_COMPACTED…).
   */
  | { readonly kind: "ended"; readonly contextId: string; readonly code: number; readonly reason: string; readonly message: string; readonly metadata: Readonly<Record<string, string>> };

/** watchMany's options: WatchOptions, applied to every context (startRevision too). */
export type WatchManyOptions = WatchOptions;

type ContextClient = PromiseClient<(typeof ContextService)["method"]>;
type RequestInit = MessageInitShape<typeof WatchRequestSchema>;

/** One context's watch: where it resumes. */
interface Followed {
  readonly id: bigint;
  readonly contextId: string;
  next: bigint;
  snapshotWanted: boolean;
}

/** The revision the earliest open watch resumes from (what a reconnect notice reports). */
function earliest(open: ReadonlyMap<bigint, Followed>): bigint {
  let min: bigint | undefined;
  for (const w of open.values()) if (min === undefined || w.next < min) min = w.next;
  return min ?? 0n;
}

function createOf(watch: Followed, options: WatchManyOptions): RequestInit {
  return {
    request: {
      case: "create",
      value: {
        watchId: watch.id,
        contextId: watch.contextId,
        startRevision: watch.snapshotWanted ? 0n : watch.next,
        sendSnapshot: watch.snapshotWanted,
        progressIntervalMs: options.progressIntervalMs ?? 0,
      },
    },
  };
}

/**
 * Watches every context of `contextIds` (no duplicates) on one stream until each has ended,
 * `signal` aborts, or a stream failure that a reconnect cannot fix is thrown.
 */
export async function* watchMany(
  client: ContextClient,
  contextIds: readonly string[],
  options: WatchManyOptions = {},
  callOptions: () => ClientCallOptions = () => ({}),
): AsyncGenerator<ManyWatchUpdate, void, undefined> {
  if (new Set(contextIds).size !== contextIds.length) throw new TypeError("watchMany: each context may be watched once");
  const backoff: BackoffOptions = { ...WATCH_BACKOFF, ...options.backoff };
  const signal = options.signal;
  const aborted = (): boolean => signal?.aborted === true;
  const open = new Map<bigint, Followed>();
  const start = BigInt(options.startRevision ?? 0);
  for (const [i, contextId] of contextIds.entries()) {
    open.set(BigInt(i + 1), { id: BigInt(i + 1), contextId, next: start, snapshotWanted: options.sendSnapshot === true });
  }
  if (start === 0n && options.sendSnapshot !== true) {
    // Each context's "now" as a number, as watch() pins it.
    await Promise.all([...open.values()].map(async (watch) => (watch.next = await nextRevisionNow(client, watch.contextId, backoff, signal, callOptions))));
  }
  let failures = 0;
  let retries = 0;
  while (!aborted() && open.size > 0) {
    const requests = new RequestQueue<RequestInit>();
    for (const watch of open.values()) requests.push(createOf(watch, options));
    const onHeaders =
      retries === 0 || options.onResumed === undefined
        ? undefined
        : () => {
            options.onResumed?.({ fromRevision: earliest(open), retries });
            retries = 0;
          };
    const stream = client.watch(requests, { ...callOptions(), ...(signal ? { signal } : {}), ...(onHeaders === undefined ? {} : { onHeaders }) });
    try {
      for await (const { watchId, response } of stream) {
        const watch = open.get(watchId);
        if (watch === undefined) continue;
        failures = 0;
        switch (response.case) {
          case "snapshot":
            watch.snapshotWanted = false;
            watch.next = response.value.revision + 1n;
            yield { kind: "snapshot", contextId: watch.contextId, revision: response.value.revision, context: response.value.context, participants: response.value.participants };
            break;
          case "events":
            // A watch never repeats a revision; this guards the seam between a watch and its re-creation.
            if (response.value.revision < watch.next) break;
            watch.next = response.value.revision + 1n;
            yield { kind: "events", contextId: watch.contextId, revision: response.value.revision, events: response.value.events };
            break;
          case "progress":
            if (!watch.snapshotWanted && response.value.revision + 1n > watch.next) watch.next = response.value.revision + 1n;
            break;
          case "canceled": {
            const { code, reason, message, metadata } = response.value;
            if (code === status.RESOURCE_EXHAUSTED && reason === "SLOW_CONSUMER") {
              // We fell behind on this one: take it up again from where we are, on this stream.
              requests.push(createOf(watch, options));
              break;
            }
            open.delete(watchId);
            yield { kind: "ended", contextId: watch.contextId, code, reason, message, metadata: { ...metadata } };
            if (open.size === 0) requests.end();
            break;
          }
          default:
            break;
        }
      }
      if (open.size === 0) return;
      // A server ends a stream OK only once the client has half-closed it and its last watch ended.
      throw new Error(`the server ended the Watch stream OK with ${open.size} watch(es) open`);
    } catch (error) {
      requests.end();
      if (aborted()) return;
      failures++;
      if (!isResumable(error) || failures >= backoff.maxAttempts) throw error;
      retries++;
      const delayMs = backoffDelay(failures, backoff);
      options.onReconnect?.({ retry: failures, delayMs, error, fromRevision: earliest(open) });
      try {
        await sleep(delayMs, signal);
      } catch {
        return;
      }
    }
  }
}
