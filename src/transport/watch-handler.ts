/**
 * WatchContext's server-streaming handler: decode the request, let the hub run the stream, map
 * each message to the wire. The hub writes through `send`, which waits for grpc-js to drain, so a
 * slow client slows only its own stream (the hub ends it with SLOW_CONSUMER when it falls too far
 * behind). The handler's promise ends the call: OK when it resolves, the error's status otherwise.
 * Each stream counts as one watch of its principal's quota (WATCH_MAX_PER_PRINCIPAL, shared with Watch).
 */
import type { ContextService as ContextServiceDesc } from "../../gen/mplp/context/v1/context_service_pb.js";
import type { WatchMessage } from "../service/watch-types.js";
import type { WatchUseCase } from "../service/watch-hub.js";
import type { WatchMetrics } from "./call-metrics.js";
import { callerOf } from "./context-handlers.js";
import type { MethodHandler, MethodsOf } from "./grpc-adapter.js";
import { int64In } from "./proto-values.js";
import { watchResponseOut } from "./watch-mapper.js";
import type { WatchQuota } from "./watch-quota.js";

type WatchMethod = MethodsOf<typeof ContextServiceDesc>["watchContext"];

/** Limits of the WatchContext handler. */
export interface WatchHandlerOptions {
  /** The per-principal count of open watches (WATCH_MAX_PER_PRINCIPAL), shared with Watch; none when absent. */
  readonly quota?: WatchQuota;
  /** Open streams and fan-out lag; none when absent. */
  readonly metrics?: WatchMetrics;
}

/** The WatchContext handler over a watch hub (or a fake in tests). */
export function watchContextHandler(hub: WatchUseCase, options: WatchHandlerOptions = {}): MethodHandler<WatchMethod> {
  return async (request, ctx, send) => {
    const release = options.quota?.acquire(ctx.principal) ?? (() => {});
    options.metrics?.watchOpened();
    try {
      await watch(request, ctx, send);
    } finally {
      options.metrics?.watchClosed();
      release();
    }
  };

  async function watch(...[request, ctx, send]: Parameters<MethodHandler<WatchMethod>>): Promise<void> {
    await hub.watch(
      callerOf(ctx),
      {
        contextId: request.contextId,
        startRevision: int64In(request.startRevision),
        sendSnapshot: request.sendSnapshot,
        progressIntervalMs: request.progressIntervalMs,
      },
      {
        send: (message) => {
          observeLag(options.metrics, message);
          return send(watchResponseOut(message));
        },
        signal: ctx.signal,
      },
    );
  }
}

/** Fan-out lag: from when the revision's first event occurred (in its commit) to this write. */
export function observeLag(metrics: WatchMetrics | undefined, message: WatchMessage): void {
  if (metrics === undefined || message.kind !== "events") return;
  const first = message.events[0];
  if (first !== undefined) metrics.revisionSent(Math.max(0, Date.now() - first.occurredAt.getTime()) / 1000);
}
