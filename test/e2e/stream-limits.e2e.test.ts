/**
 * GRPC_MAX_CONCURRENT_STREAMS over the wire: a connection holding as many open calls (here two
 * watches) as the server allows cannot start another until one ends, while other connections
 * are served as usual.
 */
import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ContextType } from "../../gen/mplp/context/v1/context_pb.js";
import { ContextService } from "../../gen/mplp/context/v1/context_service_pb.js";
import type { App } from "../../src/app.js";
import { createClient } from "../../src/transport/grpc-client.js";
import { startTestApp } from "./support/app.js";
import { failure } from "./support/failure.js";
import { as } from "./support/participants.js";

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
      expect((await full.listContexts({}, as("alice"))).contexts).toHaveLength(1);
    } finally {
      hangUp.abort();
      full.close();
      other.close();
    }
  });
});
