/**
 * The database floor: raw postgres.js on the same Postgres, no service in between — an INSERT of
 * a row like a context's, and a primary-key SELECT of one — closed loop for a fixed time. Our
 * create and get cost at least this; the gap is what the service adds.
 */
import { randomUUID } from "node:crypto";
import postgres from "postgres";
import { mergeHistograms, newHistogram, recordMs, summarize, encodeHistogram, type LatencySummary } from "../fanout/histogram.js";
import { wallClockMs } from "../fanout/stamp.js";
import { servicesCpuSeconds } from "./call-costs.js";

export interface RawFigures {
  readonly name: string;
  readonly rps: number;
  readonly latency: LatencySummary;
  readonly errors: number;
  /** CPU per call of this machine's Postgres processes (when it is local), and of this (client) process. */
  readonly postgresCpuMsPerCall?: number;
  readonly clientCpuMsPerCall: number;
}

/** Runs `body` from `concurrency` loops for `ms`, timing each call. */
async function closedLoop(name: string, concurrency: number, ms: number, local: boolean, body: (n: number) => Promise<unknown>): Promise<RawFigures> {
  const histogram = newHistogram();
  const databaseBefore = local ? servicesCpuSeconds().postgres : 0;
  const clientBefore = process.cpuUsage();
  let n = 0;
  let errors = 0;
  const end = wallClockMs() + ms;
  const loop = async (): Promise<void> => {
    while (wallClockMs() < end) {
      const start = wallClockMs();
      try {
        await body(n++);
        recordMs(histogram, wallClockMs() - start);
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  const databaseMs = local ? (servicesCpuSeconds().postgres - databaseBefore) * 1000 : undefined;
  const client = process.cpuUsage(clientBefore);
  const calls = Math.max(1, histogram.totalCount);
  const merged = mergeHistograms([encodeHistogram(histogram)]);
  const figures = {
    name,
    rps: Math.round(histogram.totalCount / (ms / 1000)),
    latency: summarize(merged),
    errors,
    ...(databaseMs === undefined ? {} : { postgresCpuMsPerCall: +(databaseMs / calls).toFixed(3) }),
    clientCpuMsPerCall: +((client.user + client.system) / 1000 / calls).toFixed(3),
  };
  histogram.destroy();
  merged.destroy();
  return figures;
}

/**
 * INSERT then point SELECT on a scratch table in `databaseUrl`, `ms` each; the table is dropped
 * after. `local`: Postgres runs on this machine, so its processes' CPU per call is read too.
 */
export async function postgresBaseline(databaseUrl: string, ms: number, concurrency: number, local: boolean): Promise<RawFigures[]> {
  // As many connections as the server's pool, so neither side gets more of the database.
  const sql = postgres(databaseUrl, { max: 10, onnotice: () => {} });
  try {
    await sql`create table bench_raw (id uuid primary key, owner text not null, name text not null, body jsonb not null, created_at timestamptz not null default now())`;
    const ids: string[] = [];
    const insert = await closedLoop("postgres.js insert", concurrency, ms, local, async () => {
      const id = randomUUID();
      await sql`insert into bench_raw (id, owner, name, body) values (${id}, 'bench', ${"raw-" + id}, ${sql.json({ description: "seeded by the benchmark", tags: ["bench"] })})`;
      ids.push(id);
    });
    const select = await closedLoop("postgres.js point select", concurrency, ms, local, (n) => sql`select * from bench_raw where id = ${ids[n % ids.length]!}`);
    await sql`drop table bench_raw`;
    return [insert, select];
  } finally {
    await sql.end({ timeout: 5 });
  }
}

/**
 * ANALYZE on the seeded database, as autovacuum does within a minute of a bulk load. A benchmark
 * that starts measuring seconds after seeding would otherwise measure plans made without
 * statistics: with none, Postgres guesses that `type = $n` matches 0.5 % of the contexts, and
 * ListContexts' page sorts every readable context (~8 ms at 3,000) instead of walking the
 * (created_at, context_id) index for 21 rows (~0.1 ms) — a state no long-running database is in.
 *
 * Only the tables the seeding filled, as autovacuum would (it analyzes a table after 50 changed
 * rows): a table analyzed while empty is planned as empty — a sequential scan costs nothing — by
 * every connection's cached generic plan until the next ANALYZE, however much it grows meanwhile,
 * where a never-analyzed table is assumed to have ten pages, which an index lookup beats.
 */
export async function analyzeDatabase(databaseUrl: string): Promise<void> {
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} });
  try {
    const filled = await sql<{ relname: string }[]>`select relname from pg_stat_user_tables where n_mod_since_analyze >= 50`;
    for (const { relname } of filled) await sql.unsafe(`analyze "${relname}"`);
  } finally {
    await sql.end({ timeout: 5 });
  }
}
