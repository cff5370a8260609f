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

interface OpenWatch {
  /** Ends the watch; set once it has started (until then, `cancelled` or the stream's end stops it at the start). */
  cancel: ((reason: unknown) => void) | undefined;
  /** The client asked to cancel it: its end is `canceled` OK/CANCELLED whatever the hub says. */
  cancelled: boolean;
}

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
    for (const watch of this.watches.values()) watch.cancel?.(this.gone());
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
    let release: () => void;
    try {
      release = this.options.quota?.acquire(this.ctx.principal) ?? (() => {});
    } catch (error) {
      return this.write(watchCanceledOut(id, { error }));
    }
    const watch: OpenWatch = { cancel: undefined, cancelled: false };
    this.watches.set(id, watch);
    this.options.metrics?.watchOpened();
    this.hub
      .watch(
        this.caller,
        { contextId: request.contextId, startRevision: int64In(request.startRevision), sendSnapshot: request.sendSnapshot, progressIntervalMs: request.progressIntervalMs },
        {
          send: (message) => {
            observeLag(this.options.metrics, message);
            return this.send(watchStreamResponseOut(id, message));
          },
          started: (cancel) => {
            watch.cancel = cancel;
            this.write(watchCreatedOut(id));
            // Cancelled, or the stream ended, while it was starting.
            if (watch.cancelled) cancel(CANCELLED);
            else if (this.closed) cancel(this.gone());
          },
        },
      )
      .then(
        () => ({ reason: "CONTEXT_DELETED", message: `context ${request.contextId} was deleted` }),
        (error: unknown) => (watch.cancelled ? { reason: "CANCELLED", message: "cancelled by the client" } : { error }),
      )
      .then((end) => {
        this.watches.delete(id);
        release();
        this.options.metrics?.watchClosed();
        this.ended(id, end);
      });
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
    const watch = this.watches.get(watchId);
    if (watch === undefined || watch.cancelled) return;
    watch.cancelled = true;
    watch.cancel?.(CANCELLED);
  }

  private ended(id: bigint, end: { readonly error: unknown } | { readonly reason: string; readonly message: string }): void {
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
