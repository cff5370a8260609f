/**
 * `npm run bench [-- --quick] [-- --embedded]`: issue 7's driver. Runs every scenario of
 * bench/ghz/ against our server (which it starts), open loop at the seed's rate and closed loop for
 * maximum throughput, beside baselines measured in the same run (bare grpc-js echo, raw
 * postgres.js), and writes bench/results/<timestamp>.json (ghz report per scenario), .md and .svg.
 *
 * A benchmark, not a test: it never fails on timing. It exits non-zero only when something could
 * not run — a scenario that failed or made no successful call.
 */
import { randomUUID } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { REPO_ROOT, SERVER_READY_MESSAGE, startProcess, type ServerProcess } from "../fanout/processes.js";
import { machine } from "../fanout/report.js";
import { Cleanup, createThrowawayDatabase } from "../fanout/resources.js";
import { ECHO_READY_MESSAGE } from "./echo-ready.js";
import { ghzReport, type GhzReport } from "./ghz-report.js";
import { OPERATIONS, type Operation } from "./operations.js";
import { postgresBaseline, type RawFigures } from "./postgres-baseline.js";
import { operationsTable, renderMarkdown, scaleTable, type OperationResult, type RunSummary } from "./report-markdown.js";
import { runScale, type ScaleRow } from "./scale.js";
import { readConfig } from "./scenario-config.js";
import { Seeder } from "./seed-data.js";
import { readSettings, USAGE, type DriverSettings } from "./settings.js";
import { p95Chart } from "./svg-chart.js";
import { UnaryPool } from "./unary-pool.js";
import type { SeedItem } from "./unary-protocol.js";

const cleanup = new Cleanup();

function abandon(why: string, code: number): void {
  console.error(`\n${why}: stopping servers and workers, dropping databases…`);
  void cleanup.runAll().finally(() => process.exit(code));
}

/** Runs one operation's config in one mode on the pool and merges the workers' results. */
async function measure(pool: UnaryPool, settings: DriverSettings, address: string, operation: string, mode: "open" | "closed", rate: number, items: readonly SeedItem[], consume: boolean): Promise<GhzReport> {
  const config = readConfig(operation);
  const parts = await pool.run(
    {
      address,
      config,
      consume,
      mode,
      concurrency: settings.concurrencyPerWorker,
      channels: settings.channelsPerWorker,
      // Workers start together, a little ahead, so none begins before the others are ready.
      startAtMs: Date.now() + 300,
      warmupMs: settings.warmupMs,
      measureMs: settings.measureMs,
      maxInFlight: 2_000,
    },
    rate,
    items,
  );
  return ghzReport(`${operation}-${mode}`, parts, settings.measureMs, {
    mode,
    targetRps: mode === "open" ? rate : null,
    concurrency: mode === "closed" ? settings.concurrencyPerWorker * pool.size : null,
  });
}

const brief = (r: GhzReport): string =>
  `${r.rps.toFixed(0)} ok/s, p50 ${r.driver.latency.p50Ms} ms, p95 ${r.driver.latency.p95Ms} ms, p99 ${r.driver.latency.p99Ms} ms` +
  (r.driver.errors + r.driver.skipped > 0 ? `, ${r.driver.errors} errors, ${r.driver.skipped} shed` : "") +
  (r.driver.exhausted > 0 ? " (seeded ids ran out)" : "");

/** Starts our server: on a throwaway Postgres database + Redis prefix, or on in-memory PGlite. */
async function startServer(settings: DriverSettings): Promise<{ server: ServerProcess; databaseUrl?: string; backends: string }> {
  const env: Record<string, string> = { LOG_LEVEL: "info", RATE_LIMIT_RPS: "0" };
  let databaseUrl: string | undefined;
  if (settings.embedded) {
    env["PGLITE_DATA_DIR"] = "memory://";
  } else {
    const database = await createThrowawayDatabase(settings.databaseUrl);
    cleanup.add(`drop the throwaway database ${new URL(database.url).pathname}`, () => database.drop());
    databaseUrl = database.url;
    Object.assign(env, { DATABASE_URL: database.url, REDIS_URL: settings.redisUrl, REDIS_KEY_PREFIX: `mplp:bench:${randomUUID()}:` });
  }
  const server = await startProcess("server", ["src/main.ts"], env, SERVER_READY_MESSAGE);
  cleanup.add(`stop our server (pid ${server.pid})`, () => server.stop());
  return { server, ...(databaseUrl === undefined ? {} : { databaseUrl }), backends: settings.embedded ? "embedded PGlite (in memory), no Redis" : "Postgres (local) + Redis (local)" };
}

async function main(): Promise<number> {
  let parsed: ReturnType<typeof readSettings>;
  try {
    parsed = readSettings(process.argv.slice(2), process.env);
  } catch (error) {
    console.error(`${error instanceof Error ? error.message : String(error)}\n\n${USAGE}`);
    return 2;
  }
  if (parsed.help) {
    console.log(USAGE);
    return 0;
  }
  const { settings } = parsed;
  process.once("SIGINT", () => abandon("interrupted", 130));
  process.once("SIGTERM", () => abandon("terminated", 143));
  const deadline = setTimeout(() => abandon(`the run took longer than ${settings.deadlineMs / 60_000} min`, 1), settings.deadlineMs);
  const started = new Date();
  const operations = OPERATIONS.filter((o) => settings.only === undefined || settings.only.includes(o.name));
  const pool = new UnaryPool(settings.workers);
  cleanup.add("stop the load workers", () => pool.stop());
  const results: OperationResult[] = [];
  let echo: GhzReport | undefined;
  let postgresFigures: RawFigures[] = [];
  let scale: ScaleRow[] = [];
  let backends: string | undefined;
  try {
    console.log(`bench (${settings.mode}): ${operations.length} operations, ${settings.warmupMs / 1000} s + ${settings.measureMs / 1000} s per mode`);
    // The transport ceiling first, alone on the machine.
    process.stdout.write("baseline: bare grpc-js echo, closed loop… ");
    const echoServer = await startProcess("echo", ["bench/ops/echo-server.ts"], {}, ECHO_READY_MESSAGE);
    const stopEcho = cleanup.add("stop the echo server", () => echoServer.stop());
    echo = await measure(pool, settings, echoServer.address, "get-context", "closed", 0, [{ contextId: randomUUID() }], false);
    await stopEcho();
    console.log(brief(echo));

    const started = await startServer(settings);
    backends = started.backends;
    if (started.databaseUrl !== undefined) {
      process.stdout.write("baseline: raw postgres.js insert / point select… ");
      postgresFigures = await postgresBaseline(started.databaseUrl, settings.measureMs / 2, settings.workers * settings.concurrencyPerWorker);
      console.log(postgresFigures.map((p) => `${p.name} ${p.rps}/s p95 ${p.latency.p95Ms} ms`).join("; "));
    }
    const address = started.server.address;
    const seeder = new Seeder(address);
    process.stdout.write(`seeding ${settings.poolContexts} contexts × ${settings.poolMembers} members… `);
    const poolIds = await seeder.createContexts(settings.poolContexts, 100);
    const members = await seeder.addMembers(poolIds, settings.poolMembers);
    console.log("done");
    const shared = { contexts: poolIds.map((contextId) => ({ contextId })), members };
    const windowSeconds = (settings.warmupMs + settings.measureMs) / 1000;
    for (const [i, operation] of operations.entries()) {
      results.push(await runOperation(`[${i + 1}/${operations.length}]`, operation, { pool, settings, address, seeder, shared, windowSeconds }));
    }
    if (settings.only === undefined) {
      const scaleSettings = { databaseUrl: started.databaseUrl, rate: settings.scaleRate, smallContexts: settings.smallContexts, largeContexts: settings.largeContexts };
      scale = await runScale(scaleSettings, shared.contexts, seeder, (op, rate, items) => measure(pool, settings, address, op, "open", rate, items, false), console.log);
    }
    seeder.close();
  } finally {
    await cleanup.runAll();
    clearTimeout(deadline);
  }
  const run: RunSummary = {
    startedAt: started.toISOString(),
    settings,
    machine: machine(),
    backends: backends ?? "not started",
    ...(echo === undefined ? {} : { echo }),
    postgres: postgresFigures,
    operations: results,
    scale,
    seconds: (Date.now() - started.getTime()) / 1000,
  };
  const stamp = `${started.toISOString().replace(/[:.]/g, "-")}${settings.embedded ? "-embedded" : ""}${settings.mode === "quick" ? "-quick" : ""}`;
  const directory = join(REPO_ROOT, "bench", "results");
  await mkdir(directory, { recursive: true });
  const svg = p95Chart(
    results.map((r) => ({ label: r.operation.name, seedP95Ms: r.operation.seed?.p95Ms, oursP95Ms: r.open?.driver.latency.p95Ms })),
    `P95 at the seed's rate${settings.rateScale === 1 ? "" : ` × ${settings.rateScale}`}: ours (${backends ?? "not started"}) vs the seed`,
  );
  await writeFile(join(directory, `${stamp}.svg`), svg);
  await writeFile(join(directory, `${stamp}.json`), JSON.stringify(run, null, 2));
  await writeFile(join(directory, `${stamp}.md`), renderMarkdown(run, `${stamp}.svg`));
  console.log(`\n${operationsTable(run)}\n\n${scaleTable(run.scale)}\n\nreports: bench/results/${stamp}.{json,md,svg} (${run.seconds.toFixed(0)} s)`);
  const broken = results.filter((r) => r.error !== undefined || (r.open?.driver.ok ?? 0) === 0 || (r.closed?.driver.ok ?? 0) === 0);
  const brokenScale = scale.filter((row) => row.small.report.driver.ok === 0 || row.large.report.driver.ok === 0);
  for (const row of brokenScale) console.error(`scale ${row.what}: no successful call`);
  for (const r of broken) console.error(`${r.operation.name}: ${r.error ?? "no successful call in a window"}`);
  return broken.length > 0 || brokenScale.length > 0 || echo === undefined || echo.driver.ok === 0 ? 1 : 0;
}

interface RunContext {
  readonly pool: UnaryPool;
  readonly settings: DriverSettings;
  readonly address: string;
  readonly seeder: Seeder;
  readonly shared: { contexts: readonly SeedItem[]; members: readonly SeedItem[] };
  readonly windowSeconds: number;
}

/** Seeds, then runs open and closed loop for one operation; a failure is reported, not thrown. */
async function runOperation(prefix: string, operation: Operation, c: RunContext): Promise<OperationResult> {
  const rate = operation.rate * c.settings.rateScale;
  try {
    process.stdout.write(`${prefix} ${operation.name}: seeding… `);
    const openSeed = await c.seeder.itemsFor(operation.seedKind, Math.ceil(rate * c.windowSeconds * 1.1), c.shared);
    process.stdout.write(`open loop ${rate}/s… `);
    const open = await measure(c.pool, c.settings, c.address, operation.name, "open", rate, openSeed.items, openSeed.consume);
    console.log(brief(open));
    process.stdout.write(`${prefix} ${operation.name}: seeding… `);
    const closedSeed = await c.seeder.itemsFor(operation.seedKind, Math.ceil(c.settings.closedSeedPerSecond * c.windowSeconds), c.shared);
    process.stdout.write("closed loop… ");
    const closed = await measure(c.pool, c.settings, c.address, operation.name, "closed", 0, closedSeed.items, closedSeed.consume);
    console.log(brief(closed));
    return { operation, open, closed };
  } catch (error) {
    if (cleanup.closing) return { operation, error: "abandoned" };
    console.error(`\n${operation.name} failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    return { operation, error: error instanceof Error ? error.message : String(error) };
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error);
    void cleanup.runAll().finally(() => process.exit(1));
  },
);
