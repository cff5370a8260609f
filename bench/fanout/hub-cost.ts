/**
 * The per-stream cost of fanning one revision out, in one process and without a network: the real
 * adapter (implementService's server-streaming wrapper and its sender), the WatchContext handler,
 * the hub, its feeds and watchers, over the memory store, handing each commit to the hub as the
 * committing instance does (WatchHub.committed). Each stream is a stand-in for a grpc-js
 * ServerWritableStream whose write() serializes with the service definition's own serializer (as
 * grpc-js does) and keeps up (returns true), so what is measured is ours, not HTTP/2's.
 *
 * The full benchmark's wall-clock figures move ±40 % on a shared machine; this one is meant for
 * `node --cpu-prof` and for `valgrind --tool=callgrind` (instruction counts do not depend on the
 * neighbours), to compare the write path before and after a change:
 *
 *   node --import tsx bench/fanout/hub-cost.ts [streams=1000] [revisions=200] [warm-up revisions=50]
 *   valgrind --tool=callgrind --instr-atstart=no --smc-check=all-non-file \
 *     node --single-threaded --import tsx bench/fanout/hub-cost.ts 1000 50 100 --callgrind
 *
 * It prints the process CPU time of the measured revisions (after a warm-up) per revision and per
 * delivery. With `--callgrind` it switches callgrind's collection on for exactly those revisions
 * (callgrind_control -i on/off), so the instruction count leaves out start-up, the warm-up and the
 * streams' opening: divide "Collected" by the revisions. `--single-threaded` keeps V8's garbage
 * collection and compilation on the main thread, which makes the count repeat to a few per cent.
 */
import * as grpc from "@grpc/grpc-js";
import { execFileSync } from "node:child_process";
import { create } from "@bufbuild/protobuf";
import { ContextService as ContextServiceDesc, WatchContextRequestSchema } from "../../gen/mplp/context/v1/context_service_pb.js";
import { createLogger } from "../../src/logger.js";
import { PrometheusMetrics } from "../../src/metrics/prometheus-metrics.js";
import { ContextService } from "../../src/service/context-service.js";
import { SharedStateService } from "../../src/service/shared-state-service.js";
import { WatchHub } from "../../src/service/watch-hub.js";
import { implementService, serviceDefinition } from "../../src/transport/grpc-adapter.js";
import { watchContextHandler } from "../../src/transport/watch-handler.js";
import { MemoryContextStore } from "../../test/support/memory-store.js";

const streams = Number(process.argv[2] ?? 1000);
const revisions = Number(process.argv[3] ?? 200);
const warmup = Number(process.argv[4] ?? 50);
const callgrind = process.argv.includes("--callgrind");
/** `--no-metrics`: without the Prometheus metrics, to see what they cost per write. */
const withMetrics = !process.argv.includes("--no-metrics");
const principal = "bench";

const store = new MemoryContextStore();
const clock = { now: () => new Date() };
const contexts = new ContextService(store, clock);
const state = new SharedStateService(store, clock);
const hub = new WatchHub(store, { subscribe: () => () => {} }, { queueRevisions: 1000, reconcileMs: 3_600_000 });
const metrics = withMetrics ? new PrometheusMetrics() : undefined;
const logger = createLogger({ level: "silent" });
const implementation = implementService(
  ContextServiceDesc,
  { watchContext: watchContextHandler(hub, metrics === undefined ? {} : { metrics }) },
  metrics === undefined ? { logger } : { logger, metrics },
);
const watchContext = implementation["WatchContext"] as (call: unknown) => void;
const serialize = serviceDefinition(ContextServiceDesc)["WatchContext"]!.responseSerialize;

let delivered = 0;
let bytes = 0;

/** What implementService's wrapper reads and calls on a grpc-js server-streaming call. */
function fakeCall(contextId: string): unknown {
  const metadata = new grpc.Metadata();
  metadata.set("x-principal-id", principal);
  return {
    request: create(WatchContextRequestSchema, { contextId }),
    metadata,
    getDeadline: () => Infinity,
    getPeer: () => "bench",
    sendMetadata: () => {},
    on: () => {},
    write(message: unknown): boolean {
      bytes += serialize(message).length;
      delivered++;
      return true;
    },
    end: () => {},
    emit: () => true,
  };
}

async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setImmediate(resolve));
}

async function commit(contextId: string, i: number): Promise<void> {
  const before = store.eventsOf(contextId).length;
  const result = await state.update({ principal }, { contextId, changes: [{ operation: "SET", path: "bench.t", value: i }], updateMask: [], expectedRevision: 0, requestId: "" });
  const events = store.eventsOf(contextId).slice(before);
  hub.committed(contextId, result.revision, () => events);
}

async function main(): Promise<void> {
  const { contextId } = await contexts.create({ principal }, { context: { name: "hot", type: "COLLABORATIVE" }, requestId: "" });
  for (let i = 0; i < streams; i++) watchContext(fakeCall(contextId));
  await until(() => hub.watcherCount === streams);
  for (let i = 0; i < warmup; i++) {
    const target = delivered + streams;
    await commit(contextId, i);
    await until(() => delivered >= target);
  }
  if (callgrind) execFileSync("callgrind_control", ["-i", "on", String(process.pid)], { stdio: "ignore" });
  const start = process.cpuUsage();
  const wallStart = performance.now();
  for (let i = 0; i < revisions; i++) {
    const target = delivered + streams;
    await commit(contextId, warmup + i);
    await until(() => delivered >= target);
  }
  const cpu = process.cpuUsage(start);
  if (callgrind) execFileSync("callgrind_control", ["-i", "off", String(process.pid)], { stdio: "ignore" });
  const ms = (cpu.user + cpu.system) / 1000;
  const wall = performance.now() - wallStart;
  console.log(
    JSON.stringify({
      streams,
      revisions,
      cpuMsPerRevision: +(ms / revisions).toFixed(3),
      cpuUsPerDelivery: +((ms * 1000) / (revisions * streams)).toFixed(3),
      wallMsPerRevision: +(wall / revisions).toFixed(3),
      bytesPerDelivery: bytes / delivered,
    }),
  );
  await hub.close();
}

void main();
