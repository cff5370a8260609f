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
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { builtServerEntry, REPO_ROOT, SERVER_READY_MESSAGE, startProcess, type ServerProcess } from "../fanout/processes.js";
import { measureActiveContexts, memoryTable, type MemoryResult } from "./active-contexts.js";
import { cacheTable, compareCache, type CacheComparison } from "./cache-compare.js";
import { machine } from "../fanout/report.js";
import { Cleanup, createThrowawayDatabase } from "../fanout/resources.js";
import { ECHO_READY_MESSAGE } from "./echo-ready.js";
import { CostMeter, median } from "./call-costs.js";
import { ghzReport, type GhzReport } from "./ghz-report.js";
import { OPERATIONS, type Operation } from "./operations.js";
import { analyzeDatabase, postgresBaseline, type RawFigures } from "./postgres-baseline.js";
import { operationsTable, renderMarkdown, scaleTable, type OperationResult, type RunSummary } from "./report-markdown.js";
import { runScale, type Fill, type ScaleRow } from "./scale.js";
import { readConfig } from "./scenario-config.js";
import { Seeder } from "./seed-data.js";
import { readSettings, USAGE, type DriverSettings } from "./settings.js";
import { fillContextsPglite, fillContextsPostgres } from "./stored-contexts.js";
import { p95Chart } from "./svg-chart.js";
import { UnaryPool } from "./unary-pool.js";
import type { SeedItem } from "./unary-protocol.js";

const cleanup = new Cleanup();

function abandon(why: string, code: number): void {
  console.error(`\n${why}: stopping servers and workers, dropping databases…`);
  void cleanup.runAll().finally(() => process.exit(code));
}

/**
 * Runs one operation's config in one mode on the pool and merges the workers' results; with a
 * meter, also what each call cost the server over the measured window (call-costs.ts).
 */
async function measure(pool: UnaryPool, settings: DriverSettings, address: string, operation: string, mode: "open" | "closed", rate: number, items: readonly SeedItem[], consume: boolean, meter?: CostMeter): Promise<GhzReport> {
  const config = readConfig(operation);
  const startAtMs = Date.now() + 300;
  // The server's counters as the measured window opens (after the warm-up), and again once it is over.
  const opened = meter === undefined ? undefined : new Promise<Awaited<ReturnType<CostMeter["sample"]>>>((resolve, reject) => {
    setTimeout(() => meter.sample().then(resolve, reject), startAtMs + settings.warmupMs - Date.now());
  });
  const parts = await pool.run(
    {
      address,
      config,
      consume,
      mode,
      concurrency: settings.concurrencyPerWorker,
      channels: settings.channelsPerWorker,
      // Workers start together, a little ahead, so none begins before the others are ready.
      startAtMs,
      warmupMs: settings.warmupMs,
      measureMs: settings.measureMs,
      maxInFlight: 2_000,
    },
    rate,
    items,
  );
  const report = ghzReport(`${operation}-${mode}`, parts, settings.measureMs, {
    mode,
    targetRps: mode === "open" ? rate : null,
    concurrency: mode === "closed" ? settings.concurrencyPerWorker * pool.size : null,
  });
  if (meter === undefined || opened === undefined) return report;
  const [a, b] = [await opened, await meter.sample()];
  return { ...report, costs: CostMeter.between(a, b, report.driver.ok + report.driver.errors) };
}

/** Whether a service URL points at this machine (its processes' CPU can then be read from /proc). */
const isLocal = (url: string): boolean => ["127.0.0.1", "localhost", "[::1]", "::1"].includes(new URL(url).hostname);

/** The cache comparison's open-loop rate: the seed's GetContext rate (2,000/s) scaled as the run's other rates are. */
const cacheRate = (settings: DriverSettings): number => Math.round(2_000 * settings.rateScale);

const brief = (r: GhzReport): string =>
  `${r.rps.toFixed(0)} ok/s, p50 ${r.driver.latency.p50Ms} ms, p95 ${r.driver.latency.p95Ms} ms, p99 ${r.driver.latency.p99Ms} ms` +
  (r.driver.errors + r.driver.skipped > 0 ? `, ${r.driver.errors} errors, ${r.driver.skipped} shed` : "") +
  (r.driver.exhausted > 0 ? " (seeded ids ran out)" : "");

/** Our server as the run knows it: the process now serving (it changes when restarted). */
interface OurServer {
  current: ServerProcess;
  readonly databaseUrl?: string;
  /** Embedded: PGlite's data directory (a temporary one, removed at the end). */
  readonly pgliteDir?: string;
  readonly backends: string;
  /** Stops the server, runs `between` (if any) while it is down, and starts it again on the same data. */
  restart(between?: () => Promise<void>): Promise<void>;
  /**
   * Runs `work` against a server on the same data with `overrides` added to its environment: a
   * second process beside ours on Postgres; on PGlite (one process per data directory) ours is
   * restarted with them, then restarted as it was.
   */
  withEnv<T>(overrides: Readonly<Record<string, string>>, work: (address: string) => Promise<T>): Promise<T>;
}

/**
 * Starts our server: on a throwaway Postgres database + Redis prefix, or on embedded PGlite in a
 * temporary data directory (a directory, as `npm start` uses, so the data outlives a restart: the
 * scale scenarios fill the table with the server stopped, PGlite being single-process).
 *
 * Node runs it with --expose-gc and gc-on-signal.ts preloaded (a full GC on SIGUSR2, for the memory
 * figure; inert otherwise). PRESENCE_TTL_MS is 10 min so the memory figure's KeepAlive streams
 * stay idle after their first renewal instead of renewing 10,000 leases every few seconds.
 */
async function startServer(settings: DriverSettings): Promise<OurServer> {
  const env: Record<string, string> = { LOG_LEVEL: "info", RATE_LIMIT_RPS: "0", PRESENCE_TTL_MS: "600000" };
  let databaseUrl: string | undefined;
  let pgliteDir: string | undefined;
  if (settings.embedded) {
    const dir = await mkdtemp(join(tmpdir(), "mplp-bench-pglite-"));
    cleanup.add(`remove the PGlite data directory ${dir}`, () => rm(dir, { recursive: true, force: true }));
    pgliteDir = dir;
    env["PGLITE_DATA_DIR"] = dir;
  } else {
    const database = await createThrowawayDatabase(settings.databaseUrl);
    cleanup.add(`drop the throwaway database ${new URL(database.url).pathname}`, () => database.drop());
    databaseUrl = database.url;
    Object.assign(env, { DATABASE_URL: database.url, REDIS_URL: settings.redisUrl, REDIS_KEY_PREFIX: `mplp:bench:${randomUUID()}:` });
  }
  const start = (overrides: Readonly<Record<string, string>> = {}) =>
    startProcess("server", ["--expose-gc", "--import", "./bench/ops/gc-on-signal.ts", builtServerEntry()], { ...env, ...overrides }, SERVER_READY_MESSAGE);
  const server: OurServer = {
    current: await start(),
    ...(databaseUrl === undefined ? {} : { databaseUrl }),
    ...(pgliteDir === undefined ? {} : { pgliteDir }),
    backends: settings.embedded ? "embedded PGlite (data directory on local disk), no Redis" : "Postgres (local) + Redis (local)",
    async restart(between) {
      await server.current.stop();
      await between?.();
      server.current = await start();
    },
    async withEnv(overrides, work) {
      if (!settings.embedded) {
        const other = await start(overrides);
        try {
          return await work(other.address);
        } finally {
          await other.stop();
        }
      }
      await server.current.stop();
      server.current = await start(overrides);
      try {
        return await work(server.current.address);
      } finally {
        await server.restart();
      }
    },
  };
  cleanup.add("stop our server", () => server.current.stop());
  return server;
}

/** How the scale scenarios fill the contexts table on this run's backend. */
function fillFor(server: OurServer): Fill {
  const progress = (line: string): void => {
    process.stdout.write(`\r  filling: ${line}   `);
  };
  return async (templateId, total, keep) => {
    if (server.databaseUrl !== undefined) return fillContextsPostgres(server.databaseUrl, templateId, total, keep, progress);
    // PGlite: the fill needs the server stopped; spare the restart when the table has the size already.
    const seeder = new Seeder(server.current.address);
    const present = await seeder.storedContexts().finally(() => seeder.close());
    if (present === total) return { added: 0, stored: present };
    let filled = { added: 0, stored: 0 };
    await server.restart(async () => {
      filled = await fillContextsPglite(server.pgliteDir!, templateId, total, keep, progress);
    });
    return filled;
  };
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
  // The machine's 1-minute load average through the run: the report says how busy it was.
  const loads: number[] = [loadavg()[0]!];
  const sampler = setInterval(() => loads.push(loadavg()[0]!), 30_000);
  const operations = OPERATIONS.filter((o) => settings.only === undefined || settings.only.includes(o.name));
  /** The parts besides the operations: all of them without --only, those it names with it. */
  const part = (name: "cache" | "memory" | "scale"): boolean => settings.only === undefined || settings.only.includes(name);
  const pool = new UnaryPool(settings.workers);
  cleanup.add("stop the load workers", () => pool.stop());
  const results: OperationResult[] = [];
  let echo: GhzReport | undefined;
  let postgresFigures: RawFigures[] = [];
  let scale: ScaleRow[] = [];
  let memory: MemoryResult | undefined;
  let cache: CacheComparison | undefined;
  let backends: string | undefined;
  try {
    console.log(`bench (${settings.mode}): ${operations.length} operations, ${settings.warmupMs / 1000} s + ${settings.measureMs / 1000} s per mode`);
    // The transport ceiling first, alone on the machine.
    process.stdout.write("baseline: bare grpc-js echo, closed loop… ");
    // It stays up: each operation's closed-loop windows alternate with the echo's.
    const echoServer = await startProcess("echo", ["bench/ops/echo-server.ts"], {}, ECHO_READY_MESSAGE);
    const stopEcho = cleanup.add("stop the echo server", () => echoServer.stop());
    const echoMeter = new CostMeter({ pid: echoServer.pid });
    const runEcho = () => measure(pool, settings, echoServer.address, "get-context", "closed", 0, [{ contextId: randomUUID() }], false, echoMeter);
    const runEchoOpen = (rate: number) => measure(pool, settings, echoServer.address, "get-context", "open", rate, [{ contextId: randomUUID() }], false);
    echo = await runEcho();
    console.log(brief(echo));

    const server = await startServer(settings);
    backends = server.backends;
    if (server.databaseUrl !== undefined) {
      process.stdout.write("baseline: raw postgres.js insert / point select… ");
      postgresFigures = await postgresBaseline(server.databaseUrl, settings.measureMs / 2, settings.workers * settings.concurrencyPerWorker, isLocal(server.databaseUrl));
      console.log(postgresFigures.map((p) => `${p.name} ${p.rps}/s p95 ${p.latency.p95Ms} ms` + (p.postgresCpuMsPerCall === undefined ? "" : `, Postgres CPU ${p.postgresCpuMsPerCall} ms a call`)).join("; "));
    }
    const address = server.current.address;
    const meter = new CostMeter({
      pid: server.current.pid,
      ...(server.current.metricsAddress === undefined ? {} : { metricsAddress: server.current.metricsAddress }),
      ...(server.databaseUrl === undefined ? {} : { databaseUrl: server.databaseUrl, localServices: isLocal(server.databaseUrl) }),
    });
    cleanup.add("close the cost meter", () => meter.close());
    const seeder = new Seeder(address);
    process.stdout.write(`seeding ${settings.poolContexts} contexts × ${settings.poolMembers} members… `);
    const poolIds = await seeder.createContexts(settings.poolContexts, 100);
    const members = await seeder.addMembers(poolIds, settings.poolMembers);
    if (server.databaseUrl !== undefined) await analyzeDatabase(server.databaseUrl);
    console.log("done");
    const shared = { contexts: poolIds.map((contextId) => ({ contextId })), members };
    const windowSeconds = (settings.warmupMs + settings.measureMs) / 1000;
    for (const [i, operation] of operations.entries()) {
      results.push(await runOperation(`[${i + 1}/${operations.length}]`, operation, { pool, settings, address, seeder, shared, windowSeconds, meter, runEcho, runEchoOpen }));
    }
    await stopEcho();
    if (part("cache")) {
      // Issue 5: GetContext with the read cache on and off, on the same data, in this run.
      console.log(`cache: GetContext with the read cache on and off (open loop at ${cacheRate(settings)}/s)…`);
      cache = await compareCache({
        measure: (at, mode, rate, items) => measure(pool, settings, at, "get-context", mode, rate, items, false),
        cachedAddress: () => server.current.address,
        withUncached: (work) => server.withEnv({ CACHE_ENABLED: "false" }, work),
        items: shared.contexts,
        rate: cacheRate(settings),
        log: console.log,
      }).catch((error: unknown) => {
        if (!cleanup.closing) console.error(`\ncache comparison failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
        return undefined;
      });
    }
    if (part("memory") && settings.activeContexts > 0) {
      // On a fresh process (restarted after seeding), so RSS before is an idle server's, not the operations' leftovers.
      // A seeder of its own: on PGlite the cache comparison restarted the server on another port.
      const memorySeeder = new Seeder(server.current.address);
      memory = await measureActiveContexts({
        seeder: memorySeeder,
        contexts: settings.activeContexts,
        holders: 2,
        streamsPerChannel: 500,
        concurrency: 50,
        settleMs: settings.activeSettleMs,
        restart: () => server.restart(),
        current: () => server.current,
        log: console.log,
      }).catch((error: unknown) => {
        if (!cleanup.closing) console.error(`\nmemory failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
        return undefined;
      }).finally(() => memorySeeder.close());
    }
    seeder.close();
    if (part("scale")) {
      // Restarts (memory, embedded fills) move the server to another port: a fresh seeder and address each time.
      const scaleSeeder = new Seeder(server.current.address);
      const scaleSettings = { fill: fillFor(server), rate: settings.scaleRate, windows: settings.windows, smallContexts: settings.smallContexts, largeContexts: settings.largeContexts };
      scale = await runScale(scaleSettings, shared.contexts, scaleSeeder, (op, rate, items) => measure(pool, settings, server.current.address, op, "open", rate, items, false), console.log);
      scaleSeeder.close();
    }
  } finally {
    await cleanup.runAll();
    clearTimeout(deadline);
    clearInterval(sampler);
  }
  const run: RunSummary = {
    startedAt: started.toISOString(),
    settings,
    machine: machine(),
    loadAverage: { min: Math.min(...loads), max: Math.max(...loads), samples: loads.length },
    backends: backends ?? "not started",
    ...(echo === undefined ? {} : { echo }),
    postgres: postgresFigures,
    operations: results,
    scale,
    ...(memory === undefined ? {} : { memory }),
    ...(cache === undefined ? {} : { cache }),
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
  console.log(`\n${operationsTable(run)}\n\n${scaleTable(run.scale)}\n\n${memoryTable(run.memory)}\n\n${cacheTable(run.cache, settings.embedded)}\n\nreports: bench/results/${stamp}.{json,md,svg} (${run.seconds.toFixed(0)} s)`);
  const broken = results.filter((r) => r.error !== undefined || (r.open?.driver.ok ?? 0) === 0 || (r.closed?.driver.ok ?? 0) === 0);
  const brokenScale = scale.filter((row) => row.small.report.driver.ok === 0 || row.large.report.driver.ok === 0);
  for (const row of brokenScale) console.error(`scale ${row.what}: no successful call`);
  for (const r of broken) console.error(`${r.operation.name}: ${r.error ?? "no successful call in a window"}`);
  const brokenMemory = part("memory") && settings.activeContexts > 0 && (memory === undefined || memory.active === 0);
  if (brokenMemory) console.error("memory: no context became active");
  const brokenCache = part("cache") && (cache === undefined || [cache.on, cache.off].some((side) => side.closed.driver.ok === 0 || side.open.driver.ok === 0));
  if (brokenCache) console.error("cache: a GetContext window with the cache on or off made no successful call");
  return broken.length > 0 || brokenScale.length > 0 || brokenMemory || brokenCache || echo === undefined || echo.driver.ok === 0 ? 1 : 0;
}

interface RunContext {
  readonly pool: UnaryPool;
  readonly settings: DriverSettings;
  readonly address: string;
  readonly seeder: Seeder;
  readonly shared: { contexts: readonly SeedItem[]; members: readonly SeedItem[] };
  readonly windowSeconds: number;
  readonly meter: CostMeter;
  /** One closed-loop window of the echo server, now. */
  readonly runEcho: () => Promise<GhzReport>;
  /** One open-loop window of the echo server at `rate`, now. */
  readonly runEchoOpen: (rate: number) => Promise<GhzReport>;
}

/**
 * Seeds, primes the operation (one short closed-loop window, not reported), then runs
 * `settings.windows` open-loop windows, then as many closed-loop windows each right after an echo window (so every
 * ratio to the echo is of the same minute); the figures reported are the medians (P95 for open,
 * ops/s for closed) and every window is kept. A failure is reported, not thrown.
 *
 * Why the prime: the server has not yet run the method's code (V8 runs it interpreted until it is
 * hot) nor cached its reads, and at the seed's rate the first second's backlog of a cold process
 * outlasts the open window's warm-up: the first window then measured the start-up, not the method.
 * A closed loop warms it at the pace it can take. Start-up itself is not what these tables compare.
 */
async function runOperation(prefix: string, operation: Operation, c: RunContext): Promise<OperationResult> {
  const rate = operation.rate * c.settings.rateScale;
  const windows = c.settings.windows;
  try {
    process.stdout.write(`${prefix} ${operation.name}: priming… `);
    const primeSettings = { ...c.settings, measureMs: 500 };
    const primeSeed = await c.seeder.itemsFor(operation.seedKind, Math.ceil((c.settings.closedSeedPerSecond * (primeSettings.warmupMs + primeSettings.measureMs)) / 1000), c.shared);
    await measure(c.pool, primeSettings, c.address, operation.name, "closed", 0, primeSeed.items, primeSeed.consume);
    process.stdout.write(`echo open loop ${rate}/s… `);
    const echoOpen = await c.runEchoOpen(rate);
    console.log(brief(echoOpen));
    const opens: GhzReport[] = [];
    for (let w = 1; w <= windows; w++) {
      process.stdout.write(`${prefix} ${operation.name}: seeding… `);
      const openSeed = await c.seeder.itemsFor(operation.seedKind, Math.ceil(rate * c.windowSeconds * 1.1), c.shared);
      process.stdout.write(`open loop ${rate}/s (${w}/${windows})… `);
      const open = await measure(c.pool, c.settings, c.address, operation.name, "open", rate, openSeed.items, openSeed.consume, c.meter);
      console.log(brief(open));
      opens.push(open);
    }
    const closeds: GhzReport[] = [];
    const echoes: GhzReport[] = [];
    for (let w = 1; w <= windows; w++) {
      process.stdout.write(`${prefix} ${operation.name}: seeding… `);
      const closedSeed = await c.seeder.itemsFor(operation.seedKind, Math.ceil(c.settings.closedSeedPerSecond * c.windowSeconds), c.shared);
      process.stdout.write(`echo… `);
      const echo = await c.runEcho();
      process.stdout.write(`${echo.rps.toFixed(0)}/s; closed loop (${w}/${windows})… `);
      const closed = await measure(c.pool, c.settings, c.address, operation.name, "closed", 0, closedSeed.items, closedSeed.consume, c.meter);
      console.log(brief(closed));
      echoes.push(echo);
      closeds.push(closed);
    }
    return {
      operation,
      open: median(opens, (r) => r.driver.latency.p95Ms)!,
      closed: median(closeds, (r) => r.rps)!,
      echo: median(echoes, (r) => r.rps)!,
      echoOpen,
      windows: { open: opens, closed: closeds, echo: echoes },
    };
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
