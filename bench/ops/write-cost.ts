/**
 * CPU of one call below gRPC: ContextService.create or .list on Postgres (or PGlite with
 * EMBEDDED=1), N in flight, no cache, doorbell or transport; prints ops/s and this process's CPU
 * per op. For finding where a call's time goes without the driver and grpc-js in the picture.
 *   node --import tsx bench/ops/write-cost.ts create|list [ops] [inFlight] [deadline 0|1]
 */
import { randomUUID } from "node:crypto";
import { createThrowawayDatabase } from "../fanout/resources.js";
import { openDatabase } from "../../src/store/database.js";
import { PgContextStore } from "../../src/store/context-store.js";
import { ContextService } from "../../src/service/context-service.js";
import { systemClock } from "../../src/service/ports.js";
import { createLogger } from "../../src/logger.js";

const [op = "create", ...rest] = process.argv.slice(2);
const [ops = 4000, inFlight = 64, withDeadline = 1] = rest.map(Number);
const embedded = process.env["EMBEDDED"] === "1";
const admin = process.env["BENCH_DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/postgres";
const throwaway = embedded ? undefined : await createThrowawayDatabase(admin);
const database = await openDatabase({ url: throwaway?.url, pgliteDataDir: "memory://", poolMax: 20, statementTimeoutMs: 30_000, logger: createLogger({ level: "warn" }) });
try {
  const store = new PgContextStore(database, { onCommit: () => undefined });
  const service = new ContextService(store, systemClock, { sharedStateMaxBytes: 1 << 20 });
  const caller = () => ({ principal: "bench", ...(withDeadline ? { deadline: Date.now() + 20_000 } : {}) });
  const create = () =>
    service.create(caller(), {
      context: {
        name: `bench-${randomUUID()}`,
        description: "planning session for the release train",
        type: "COLLABORATIVE",
        configuration: { maxParticipants: 50, timeoutMs: 3_600_000 },
        accessControl: { visibility: "PRIVATE", joinPolicy: "INVITATION_ONLY" },
        metadata: { tags: ["bench", "release"] },
      },
      requestId: randomUUID(),
    });
  const list = () => service.list(caller(), { pageSize: 20, pageToken: "", filter: { type: "COLLABORATIVE" } });
  const call = op === "list" ? list : create;
  const run = async (count: number, work: () => Promise<unknown>) => {
    let next = 0;
    const worker = async () => {
      while (next++ < count) await work();
    };
    await Promise.all(Array.from({ length: inFlight }, worker));
  };
  await run(op === "list" ? 3000 : 500, create); // data, and warm-up
  await run(200, call);
  const cpu = process.cpuUsage();
  const t0 = performance.now();
  await run(ops, call);
  const seconds = (performance.now() - t0) / 1000;
  const used = process.cpuUsage(cpu);
  console.log(JSON.stringify({ op, embedded, ops, inFlight, withDeadline, opsPerSecond: Math.round(ops / seconds), cpuMsPerOp: +((used.user + used.system) / 1000 / ops).toFixed(3), sysMsPerOp: +(used.system / 1000 / ops).toFixed(3) }));
} finally {
  await database.close();
  await throwaway?.drop();
}
