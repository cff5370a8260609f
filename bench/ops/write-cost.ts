/**
 * CPU of one call below gRPC: ContextService.create or .list on Postgres (or PGlite with
 * EMBEDDED=1), N in flight, no cache, doorbell or transport; prints ops/s and this process's CPU
 * per op. For finding where a call's time goes without the driver and grpc-js in the picture.
 *   node --import tsx bench/ops/write-cost.ts create|list [ops] [inFlight] [deadline 0|1]
 * With EXPLAIN=1 it then runs the last statement of the kind measured once more under EXPLAIN
 * ANALYZE and prints the database's planning and execution time of it (a create: on fresh ids).
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
  // The last statement sent, for EXPLAIN=1.
  let last: [string, readonly unknown[]] | undefined;
  const query = database.sql.query.bind(database.sql);
  database.sql.query = (text, params, deadline) => {
    last = [text, params];
    return query(text, params, deadline);
  };
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
  if (process.env["EXPLAIN"] === "1" && !embedded) {
    // How Postgres planned our prepared statements on one of the pool's connections.
    const plans = await query("select left(regexp_replace(statement, '\\s+', ' ', 'g'), 40) as statement, generic_plans, custom_plans from pg_prepared_statements", []);
    console.log(JSON.stringify(plans));
  }
  if (process.env["EXPLAIN"] === "1" && last !== undefined) {
    const [text, params] = last;
    // A create's ids must be new: every id of the statement's parameters is replaced by a fresh one.
    const ids = new Map<string, string>();
    const fresh = params.map((p) =>
      typeof p === "string" ? p.replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, (id) => ids.get(id) ?? (ids.set(id, randomUUID()), ids.get(id)!)) : p,
    );
    const [row] = await query(`explain (analyze, format json) ${text}`, fresh);
    const plan = (Object.values(row ?? {})[0] as Array<Record<string, unknown>> | string);
    const top = (typeof plan === "string" ? JSON.parse(plan) : plan)[0]!;
    console.log(JSON.stringify({ statement: text.slice(0, 40).replace(/\s+/g, " "), planningMs: top["Planning Time"], executionMs: top["Execution Time"], triggers: top["Triggers"] }));
    if (process.env["EXPLAIN_PLAN"] === "1") console.log(JSON.stringify(top["Plan"], null, 1));
  }
} finally {
  await database.close();
  await throwaway?.drop();
}
