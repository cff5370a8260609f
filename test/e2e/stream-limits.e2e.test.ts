/**
 * GRPC_MAX_CONCURRENT_STREAMS over the wire: a connection holding as many open calls (here two
 * watches) as the server allows cannot start another until one ends, while other connections
 * are served as usual.
 *
 * "Ends" means the server has seen it end. From Node 24 on, a Node http2 server still counts a
 * stream the client has just reset until its next event-loop turn, and answers a new stream whose
 * HEADERS arrive in the same read as that RST_STREAM with ENHANCE_YOUR_CALM (grpc-js:
 * RESOURCE_EXHAUSTED "Bandwidth exhausted or memory limit exceeded") instead of serving it; Node 20
 * released the slot at once. The client's http2 layer sends a call it started right after
 * cancelling exactly so, so the test waits for the server to report the watches closed first.
 */
import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ContextType } from "../../gen/mplp/context/v1/context_pb.js";
import { ContextService } from "../../gen/mplp/context/v1/context_service_pb.js";
import type { App } from "../../src/app.js";
import { createClient } from "../../src/transport/grpc-client.js";
import { startTestApp } from "./support/app.js";
import { failure } from "./support/failure.js";
import { getHttp, sample } from "./support/metrics.js";
import { as, eventually } from "./support/participants.js";

describe("concurrent streams per connection (PGlite)", () => {
  let app: App;
  beforeAll(async () => {
    app = await startTestApp({ PGLITE_DATA_DIR: "memory://", GRPC_MAX_CONCURRENT_STREAMS: "2" });
  });
  afterAll(async () => app?.stop());

  it("holds a third call on a full connection until a stream ends, and serves other connections meanwhile", async () => {
    const address = `127.0.0.1:${app.port}`;
    const full = createClient(ContextService, address);
    // grpc-js shares one connection among clients with equal options unless told otherwise.
    const other = createClient(ContextService, address, undefined, { "grpc.use_local_subchannel_pool": 1 });
    const hangUp = new AbortController();
    try {
      const { context } = await full.createContext({ context: { name: "streams", type: ContextType.PIPELINE } }, as("alice"));
      const watches = [0, 1].map(() =>
        full.watchContext({ contextId: context!.contextId, sendSnapshot: true }, { ...as("alice"), signal: hangUp.signal })[Symbol.asyncIterator](),
      );
      for (const watch of watches) await watch.next();
      // The client may not open a third stream on this connection: the call waits, and its deadline passes.
      const held = await failure(full.listContexts({}, { ...as("alice"), deadline: Date.now() + 1_000 }));
      expect(held.code).toBe(status.DEADLINE_EXCEEDED);
      expect((await other.listContexts({}, as("alice"))).contexts).toHaveLength(1);
      hangUp.abort();
      for (const watch of watches) await watch.next().catch(() => undefined);
      // The client forgets a cancelled stream at once; wait until the server has let go of both (see the top).
      await eventually("the server has closed both watches", async () =>
        sample((await getHttp(app.metricsPort, "/metrics")).body, "mplp_context_watch_streams_open") === 0 ? true : undefined,
      );
      expect((await full.listContexts({}, as("alice"))).contexts).toHaveLength(1);
    } finally {
      hangUp.abort();
      full.close();
      other.close();
    }
  });
});
