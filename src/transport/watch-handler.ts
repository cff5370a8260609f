/**
 * WatchContext's server-streaming handler: decode the request, let the hub run the stream, map
 * each message to the wire. The hub writes through `send`, which waits for grpc-js to drain, so a
 * slow client slows only its own stream (the hub ends it with SLOW_CONSUMER when it falls too far
 * behind). The handler's promise ends the call: OK when it resolves, the error's status otherwise.
 * Each principal may hold at most `maxPerPrincipal` streams open (WATCH_MAX_PER_PRINCIPAL).
 */
import type { ContextService as ContextServiceDesc } from "../../gen/mplp/context/v1/context_service_pb.js";
import type { WatchUseCase } from "../service/watch-hub.js";
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
}

/** The WatchContext handler over a watch hub (or a fake in tests). */
export function watchContextHandler(hub: WatchUseCase, options: WatchHandlerOptions = {}): MethodHandler<WatchMethod> {
  const quota = new WatchQuota(options.maxPerPrincipal ?? Number.MAX_SAFE_INTEGER);
  return async (request, ctx, send) => {
    const release = quota.acquire(ctx.principal);
    try {
      await watch(request, ctx, send);
    } finally {
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
      { send: (message) => send(watchResponseOut(message)), signal: ctx.signal },
    );
  }
}
