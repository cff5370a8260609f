/**
 * WatchContext's server-streaming handler: decode the request, let the hub run the stream, map
 * each message to the wire. The hub writes through `send`, which waits for grpc-js to drain, so a
 * slow client slows only its own stream (the hub ends it with SLOW_CONSUMER when it falls too far
 * behind). The handler's promise ends the call: OK when it resolves, the error's status otherwise.
 * Each principal may hold at most `maxPerPrincipal` streams open (WATCH_MAX_PER_PRINCIPAL).
 */
import type { ContextService as ContextServiceDesc } from "../../gen/mplp/context/v1/context_service_pb.js";
import type { WatchMessage } from "../service/watch-types.js";
import type { WatchUseCase } from "../service/watch-hub.js";
import type { WatchMetrics } from "./call-metrics.js";
import { callerOf } from "./context-handlers.js";
import type { MethodHandler, MethodsOf } from "./grpc-adapter.js";
import { int64In } from "./proto-values.js";
import { watchResponseOut } from "./watch-mapper.js";
import { WatchQuota } from "./watch-quota.js";

type WatchMethod = MethodsOf<typeof ContextServiceDesc>["watchContext"];

/** Limits of the WatchContext handler. */
export interface WatchHandlerOptions {
  /** Most streams one principal may hold open (default: no practical limit). */
  readonly maxPerPrincipal?: number;
  /** Open streams and fan-out lag; none when absent. */
  readonly metrics?: WatchMetrics;
}

/** The WatchContext handler over a watch hub (or a fake in tests). */
export function watchContextHandler(hub: WatchUseCase, options: WatchHandlerOptions = {}): MethodHandler<WatchMethod> {
  const quota = new WatchQuota(options.maxPerPrincipal ?? Number.MAX_SAFE_INTEGER);
  return async (request, ctx, send) => {
    const release = quota.acquire(ctx.principal);
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
          observeLag(message);
          return send(watchResponseOut(message));
        },
        signal: ctx.signal,
      },
    );
  }

  /** Fan-out lag: from when the revision's first event occurred (in its commit) to this write. */
  function observeLag(message: WatchMessage): void {
    if (options.metrics === undefined || message.kind !== "events") return;
    const first = message.events[0];
    if (first !== undefined) options.metrics.revisionSent(Math.max(0, Date.now() - first.occurredAt.getTime()) / 1000);
  }
}
