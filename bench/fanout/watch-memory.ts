/**
 * Heap per watch without the machine's noise: `node --expose-gc --import tsx
 * bench/fanout/watch-memory.ts [watches] [contexts]` starts the real server in this process
 * (embedded PGlite, in-process doorbell), opens one Watch stream holding `watches` watches over
 * `contexts` contexts, and prints the heap, RSS and external growth per watch after full GCs.
 * `HEAP_SNAPSHOTS=dir` also writes a heap snapshot before and after, to compare by constructor in
 * Chrome DevTools (Comparison view). The figure includes this process's client side of the
 * stream (small: one call) and the read cache's copy of each context (divided by the watches).
 */
import { ContextType } from "../../gen/mplp/context/v1/context_pb.js";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { ContextService, type WatchRequestSchema } from "../../gen/mplp/context/v1/context_service_pb.js";
import { startApp } from "../../src/app.js";
import { loadConfig } from "../../src/config.js";
import { createLogger } from "../../src/logger.js";
import { RequestQueue } from "../../src/sdk/request-queue.js";
import { createClient } from "../../src/transport/grpc-client.js";
import { join } from "node:path";
import { writeHeapSnapshot } from "node:v8";

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error("run with node --expose-gc");
const watches = Number(process.argv[2] ?? 5_000);
const contextCount = Number(process.argv[3] ?? 1_000);
const snapshots = process.env["HEAP_SNAPSHOTS"];

const config = loadConfig({
  PGLITE_DATA_DIR: "memory://",
  GRPC_PORT: "0",
  METRICS_PORT: "0",
  WATCH_MAX_PER_PRINCIPAL: String(watches),
  WATCH_MAX_PER_STREAM: String(watches),
  LOG_LEVEL: "warn",
});
const app = await startApp(config, createLogger({ level: "warn" }));
const client = createClient(ContextService, `127.0.0.1:${app.port}`);
const as = { metadata: { "x-principal-id": "bench" } };
const ids: string[] = [];
while (ids.length < contextCount) {
  const requests = Array.from({ length: Math.min(100, contextCount - ids.length) }, (_, k) => ({ context: { name: `m${ids.length + k}`, type: ContextType.COLLABORATIVE } }));
  ids.push(...(await client.batchCreateContexts({ requests }, as)).contexts.map((c) => c.contextId));
}

const requests = new RequestQueue<MessageInitShape<typeof WatchRequestSchema>>();
let created = 0;
const responses = client.watch(requests, as);
void (async () => {
  for await (const r of responses) if (r.response.case === "created") created++;
})();

gc();
gc();
if (snapshots !== undefined) writeHeapSnapshot(join(snapshots, "before.heapsnapshot"));
const before = process.memoryUsage();
for (let i = 0; i < watches; i++) requests.push({ request: { case: "create", value: { watchId: BigInt(i + 1), contextId: ids[i % ids.length]! } } });
while (created < watches) await new Promise((resolve) => setTimeout(resolve, 50));
await new Promise((resolve) => setTimeout(resolve, 500));
gc();
gc();
const after = process.memoryUsage();
if (snapshots !== undefined) writeHeapSnapshot(join(snapshots, "after.heapsnapshot"));
const per = (key: "heapUsed" | "rss" | "external"): string => ((after[key] - before[key]) / watches).toFixed(0);
console.log(`${watches} watches over ${ids.length} contexts on one Watch stream: heap +${per("heapUsed")} B, RSS +${per("rss")} B, external +${per("external")} B per watch`);
process.exit(0);
