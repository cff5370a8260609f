/**
 * Watch: many watches on one bidirectional stream, shaped like etcd's Watch. Each `create` runs one
 * watch through the same hub as WatchContext (same start, same guarantees, same ends); each
 * response carries its watch_id. A watch that ends — cancelled, CONTEXT_DELETED, SLOW_CONSUMER,
 * REVISION_COMPACTED, lost READ, a create refused at once — gets one `canceled` response and
 * never ends the stream or its neighbours. The stream itself ends only for the whole caller: a
 * request that is malformed (INVALID_ARGUMENT), a token that expires (UNAUTHENTICATED, the adapter),
 * the hub shutting down (UNAVAILABLE: resume every watch elsewhere), or the client going away.
 *
 * Watches share the stream's back-pressure: a client that stops reading stalls all of them, and
 * each is ended SLOW_CONSUMER on its own as its queue fills (it resumes from last_revision + 1).
 */
import type { ContextService as ContextServiceDesc, WatchCreateRequest, WatchRequest, WatchResponse } from "../../gen/mplp/context/v1/context_service_pb.js";
import { AppError, isAppError } from "../domain/app-error.js";
import type { Logger } from "../logger.js";
import type { Caller } from "../service/caller.js";
import type { WatchUseCase } from "../service/watch-hub.js";
import type { EndingSink, StartedWatch, WatchMessage, WatchOutcome } from "../service/watch-types.js";
import type { CallContext } from "./call-context.js";
import type { WatchMetrics } from "./call-metrics.js";
import { callerOf } from "./context-handlers.js";
import type { MethodHandler, MethodsOf, Send } from "./grpc-adapter.js";
import { int64In } from "./proto-values.js";
import { observeLag } from "./watch-handler.js";
import { watchCanceledOut, watchCreatedOut, watchStreamResponseOut } from "./watch-mapper.js";
import type { WatchQuota } from "./watch-quota.js";

type WatchStreamMethod = MethodsOf<typeof ContextServiceDesc>["watch"];

/** What a watch the client cancelled ends with inside the hub (its `canceled` says CANCELLED, code OK). */
const CANCELLED = new AppError("SERVICE_UNAVAILABLE", "cancelled by the client");

/** Limits of the Watch handler. */
export interface WatchStreamOptions {
  /** Most watches one stream may hold at once (WATCH_MAX_PER_STREAM). */
  readonly maxPerStream: number;
  /** The per-principal count of open watches, shared with WatchContext; none when absent. */
  readonly quota?: WatchQuota;
  /** Open watches and fan-out lag; none when absent. */
  readonly metrics?: WatchMetrics;
  /** Where a watch that failed on a bug (INTERNAL) is logged; its stream goes on. */
  readonly logger?: Logger;
}

/** The Watch handler over a watch hub. */
export function watchHandler(hub: WatchUseCase, options: WatchStreamOptions): MethodHandler<WatchStreamMethod> {
  return async (requests, ctx, send) => {
    const stream = new WatchStream(hub, ctx, send, options);
    try {
      await Promise.race([stream.serve(requests), stream.failed]);
    } finally {
      stream.close();
    }
  };
}

/**
 * One watch of a stream, and the sink the hub writes it through: an object with methods rather
 * than a set of closures, since a stream may hold a thousand of them.
 */
class OpenWatch implements EndingSink {
  /** Set once it has started (until then, `cancelled` or the stream's end stops it at the start). */
  private running: StartedWatch | undefined;
  /** The client asked to cancel it: its end is `canceled` OK/CANCELLED whatever the hub says. */
  private cancelled = false;
  /** Its end was heard (from the hub, or the hub's refusal to start it). */
  private over = false;

  constructor(
    private readonly stream: WatchStream,
    readonly id: bigint,
  ) {}

  send(message: WatchMessage): Promise<void> | undefined {
    return this.stream.deliver(this.id, message);
  }

  started(watch: StartedWatch): void {
    this.running = watch;
    this.stream.created(this);
    // Cancelled, or the stream ended, while it was starting.
    if (this.cancelled) watch.abort(CANCELLED);
    else this.stream.endIfClosed(watch);
  }

  /** The client cancels it (a second cancel is ignored). */
  cancel(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.running?.abort(CANCELLED);
  }

  /** The stream is ending: stop it, if it started (one still starting stops as it starts). */
  stop(reason: unknown): void {
    this.running?.abort(reason);
  }

  /** The hub let go of it (or refused to start it): the stream answers its `canceled`. */
  ended(outcome: WatchOutcome): void {
    if (this.over) return;
    this.over = true;
    this.stream.ended(this, this.end(outcome));
  }

  /** What its `canceled` says, for how it ended. */
  private end(outcome: WatchOutcome): WatchEnd {
    // OK comes only from a watch that started: its context id is the feed's one string, and the
    // request's copy is not kept a watch's lifetime.
    if (outcome.ok) return { reason: "CONTEXT_DELETED", message: `context ${this.running?.contextId ?? ""} was deleted` };
    return this.cancelled ? { reason: "CANCELLED", message: "cancelled by the client" } : { error: outcome.error };
  }
}

type WatchEnd = { readonly error: unknown } | { readonly reason: string; readonly message: string };

/** One Watch call: its watches by id, and how the call ends. */
class WatchStream {
  private readonly watches = new Map<bigint, OpenWatch>();
  private readonly caller: Caller;
  /** The id the server gives the next create that names none (see nextServerId). */
  private serverId = 1n;
  private idle: (() => void) | undefined;
  /** The stream is ending: no watch starts any more. */
  private closed = false;
  private fail!: (error: unknown) => void;
  /** Rejects with what ends the whole stream (the hub shut down); never resolves. */
  readonly failed: Promise<never>;

  constructor(
    private readonly hub: WatchUseCase,
    private readonly ctx: CallContext,
    private readonly send: Send<WatchResponse>,
    private readonly options: WatchStreamOptions,
  ) {
    this.caller = callerOf(ctx);
    // One listener for the stream, not a signal per watch: the client going away ends them all.
    ctx.signal.addEventListener("abort", () => this.close(), { once: true });
    this.failed = new Promise<never>((_, reject) => (this.fail = reject));
    // Whoever loses the race with serve() has no one to hear it.
    this.failed.catch(() => {});
  }

  /** Handles each request in order; once the client has sent its last, waits for its watches to end. */
  async serve(requests: AsyncIterable<WatchRequest>): Promise<void> {
    for await (const { request } of requests) {
      switch (request.case) {
        case "create":
          this.create(request.value);
          break;
        case "cancel":
          this.cancel(request.value.watchId);
          break;
        default:
          throw AppError.validation([{ field: "request", description: "must set create or cancel" }]);
      }
    }
    while (this.watches.size > 0) await new Promise<void>((resolve) => (this.idle = resolve));
  }

  /** Ends every watch still open (the stream is ending, however it ends); those still starting end as they start. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const watch of this.watches.values()) watch.stop(this.gone());
  }

  /** What ends a watch whose stream is gone (nobody hears it: the stream is not written to any more). */
  private gone(): unknown {
    return this.ctx.signal.aborted ? this.ctx.signal.reason : new AppError("SERVICE_UNAVAILABLE", "the Watch stream ended");
  }

  private create(request: WatchCreateRequest): void {
    if (this.closed) return;
    const refused = this.refusal(request.watchId);
    if (refused !== undefined) return this.write(watchCanceledOut(request.watchId, { error: refused }));
    const id = request.watchId > 0n ? request.watchId : this.nextServerId();
    try {
      this.options.quota?.take(this.ctx.principal);
    } catch (error) {
      return this.write(watchCanceledOut(id, { error }));
    }
    const watch = new OpenWatch(this, id);
    this.watches.set(id, watch);
    this.options.metrics?.watchOpened();
    // Its end comes to watch.ended; the promise only says whether it started.
    this.hub
      .open(
        this.caller,
        { contextId: request.contextId, startRevision: int64In(request.startRevision), sendSnapshot: request.sendSnapshot, progressIntervalMs: request.progressIntervalMs },
        watch,
      )
      .catch((error: unknown) => watch.ended({ ok: false, error }));
  }

  /** A message of watch `id` from the hub. */
  deliver(id: bigint, message: WatchMessage): Promise<void> | undefined {
    observeLag(this.options.metrics, message);
    return this.send(watchStreamResponseOut(id, message));
  }

  /** The watch started: its `created` goes out before any of its messages. */
  created(watch: OpenWatch): void {
    this.write(watchCreatedOut(watch.id));
  }

  /** A watch that started after the stream began to end stops at once. */
  endIfClosed(watch: StartedWatch): void {
    if (this.closed) watch.abort(this.gone());
  }

  /** Why a create is refused before it starts, if it is. */
  private refusal(watchId: bigint): AppError | undefined {
    if (watchId < 0n) return AppError.validation([{ field: "watch_id", description: "must be 0 (the server picks one) or a positive id" }]);
    if (watchId > 0n && this.watches.has(watchId)) {
      return AppError.validation([{ field: "watch_id", description: `${watchId} is in use on this stream: pick another, or cancel it first` }]);
    }
    if (this.watches.size >= this.options.maxPerStream) {
      return new AppError("RATE_LIMITED", `too many watches on this stream: at most ${this.options.maxPerStream}; cancel one or open another stream`, {
        metadata: { limit: String(this.options.maxPerStream), open_watches: String(this.watches.size) },
      });
    }
    return undefined;
  }

  /**
   * Server-given ids count up from 1 and skip ids in use, so a client that names no id can match
   * its creates to them in order; one that names some of its ids should name them all.
   */
  private nextServerId(): bigint {
    while (this.watches.has(this.serverId)) this.serverId++;
    return this.serverId++;
  }

  /** A cancel of an id that is not open is ignored: the watch may have ended on its own meanwhile. */
  private cancel(watchId: bigint): void {
    this.watches.get(watchId)?.cancel();
  }

  /** Watch `watch` ended: it leaves the stream, and its `canceled` goes out. */
  ended(watch: OpenWatch, end: WatchEnd): void {
    const id = watch.id;
    this.watches.delete(id);
    // Its quota slot: taken in create(), given back here once (OpenWatch.ended runs once).
    this.options.quota?.give(this.ctx.principal);
    this.options.metrics?.watchClosed();
    if (this.watches.size === 0) {
      this.idle?.();
      this.idle = undefined;
    }
    if (this.ctx.signal.aborted) return;
    if ("error" in end) {
      // The hub shut down: every watch ends, so the stream ends, once, with its status.
      if (this.hub.isClosed === true) return this.fail(end.error);
      if (!isAppError(end.error)) this.options.logger?.error({ err: end.error, watchId: String(id), method: this.ctx.method }, "a watch failed on an unexpected error");
    }
    this.write(watchCanceledOut(id, end));
  }

  /** A created or canceled response: small and rare, written whatever the back-pressure says. */
  private write(response: WatchResponse): void {
    try {
      void this.send(response)?.catch(() => {});
    } catch {
      // The call is gone: nothing more to say on it.
    }
  }
}
