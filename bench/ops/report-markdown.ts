/**
 * The run's markdown report: per operation the seed's figures, ours at the seed's rate, our maximum
 * throughput, its ratio to the bare grpc-js ceiling of the same run, and whether issue 7's targets
 * are met; then the baselines and how the run was made.
 */
import { memoryTable, type MemoryResult } from "./active-contexts.js";
import { cacheTable, type CacheComparison } from "./cache-compare.js";
import type { GhzReport } from "./ghz-report.js";
import { throughputTarget, type Operation } from "./operations.js";
import type { RawFigures } from "./postgres-baseline.js";
import type { ScaleRow } from "./scale.js";
import type { DriverSettings } from "./settings.js";

export interface OperationResult {
  readonly operation: Operation;
  /** The median window of each mode (P95 for open, ops/s for closed), and the echo's median beside the closed ones. */
  readonly open?: GhzReport;
  readonly closed?: GhzReport;
  readonly echo?: GhzReport;
  /** The echo server in one open-loop window at the operation's rate: the P95 floor of this machine and driver. */
  readonly echoOpen?: GhzReport;
  /** Every window, in the order run (each closed window right after its echo window). */
  readonly windows?: { readonly open: readonly GhzReport[]; readonly closed: readonly GhzReport[]; readonly echo: readonly GhzReport[] };
  readonly error?: string;
}

export interface RunSummary {
  readonly startedAt: string;
  readonly settings: DriverSettings;
  readonly machine: Record<string, unknown>;
  /** The machine's 1-minute load average, sampled every 30 s through the run. */
  readonly loadAverage?: { readonly min: number; readonly max: number; readonly samples: number };
  readonly backends: string;
  readonly echo?: GhzReport;
  readonly postgres: readonly RawFigures[];
  readonly operations: readonly OperationResult[];
  readonly scale: readonly ScaleRow[];
  /** Absent when skipped (`--only`, `--active 0`) or failed. */
  readonly memory?: MemoryResult;
  /** GetContext with the read cache on and off (issue 5); absent when skipped (`--only`) or failed. */
  readonly cache?: CacheComparison;
  readonly seconds: number;
}

const ms = (value: number | undefined): string => (value === undefined ? "—" : value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2));
const int = (value: number | undefined): string => (value === undefined ? "—" : Math.round(value).toLocaleString("en-US"));

/** "met" / "missed" and the figures behind it, per operation. */
export function verdict(result: OperationResult, echoRps: number | undefined): { p95: boolean | undefined; throughput: boolean | undefined; throughputTarget: number | undefined } {
  const p95 = result.open?.driver.latency.p95Ms;
  const target = throughputTarget(result.operation, echoRps);
  const open = result.open;
  // A run with errors or skipped (shed) requests does not meet a latency target whatever its P95.
  const clean = open !== undefined && open.driver.errors === 0 && open.driver.skipped === 0 && open.driver.ok > 0;
  return {
    p95: p95 === undefined ? undefined : clean && p95 <= result.operation.targetP95Ms,
    throughputTarget: target,
    throughput: target === undefined || result.closed === undefined ? undefined : result.closed.rps >= target,
  };
}

const mark = (value: boolean | undefined): string => (value === undefined ? "—" : value ? "met" : "**missed**");

/** The per-operation table (also pasted into the READMEs). */
export function operationsTable(run: RunSummary): string {
  const lines = [
    "| operation | seed P50 / P95 / P99 | seed ops/s | rate run | ours P50 / P95 / P99 (p99.9) | errors | P95 target | P95 | our max ops/s | × seed | ÷ echo | max target | max |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
  ];
  for (const result of run.operations) {
    const { operation: op, open, closed } = result;
    if (result.error !== undefined) {
      lines.push(`| ${op.name} | | | | failed: ${result.error.split("\n")[0]!.slice(0, 120)} | | | | | | | | |`);
      continue;
    }
    // The echo of this operation's own minutes when it was measured beside it, else the run's first.
    const echoRps = result.echo?.rps ?? run.echo?.rps;
    const v = verdict(result, echoRps);
    const l = open?.driver.latency;
    const seed = op.seed;
    lines.push(
      [
        "",
        op.name,
        seed === undefined ? "— (sync < 200 ms)" : `${seed.p50Ms} / ${seed.p95Ms} / ${seed.p99Ms} ms`,
        seed === undefined ? "—" : int(seed.rps),
        int(open?.driver.targetRps ?? undefined),
        l === undefined ? "—" : `${ms(l.p50Ms)} / ${ms(l.p95Ms)} / ${ms(l.p99Ms)} (${ms(l.p999Ms)}) ms`,
        open === undefined ? "—" : String(open.driver.errors + open.driver.skipped),
        `≤ ${ms(op.targetP95Ms)} ms`,
        mark(v.p95),
        int(closed?.rps),
        seed === undefined || closed === undefined ? "—" : `${(closed.rps / seed.rps).toFixed(1)}×`,
        echoRps === undefined || closed === undefined ? "—" : `${Math.round((closed.rps / echoRps) * 100)}%`,
        v.throughputTarget === undefined ? "—" : `≥ ${int(v.throughputTarget)}`,
        mark(v.throughput),
        "",
      ].join(" | ").trim(),
    );
  }
  return lines.join("\n");
}

const fixed = (value: number | undefined, digits: number): string => (value === undefined ? "—" : value.toFixed(digits));

/**
 * Per operation, what a call cost in its median closed-loop window: the database work our server
 * counted, Postgres's committed transactions, the server's CPU per call beside the echo server's
 * in the echo window run just before it; then every window's ops/s and P95, so the spread shows.
 */
const windowCount = (n: number): string => (n === 1 ? "1 window" : `${n} windows`);
const windowsOf = (run: RunSummary): string => windowCount(run.settings.windows);

export function costsTable(run: RunSummary): string {
  const lines = [
    `| operation | statements / call | round trips / call | transactions / call | xact_commit / call | server CPU / call | echo CPU / call | CPU ÷ echo | closed ops/s, ${windowsOf(run)} (echo) | open P95, ${windowsOf(run)} | echo open P95 at the rate |`,
    "|---|---|---|---|---|---|---|---|---|---|---|",
  ];
  for (const result of run.operations) {
    const c = result.closed?.costs;
    const e = result.echo?.costs;
    const w = result.windows;
    lines.push(
      [
        "",
        result.operation.name,
        fixed(c?.statements, 2),
        fixed(c?.roundTrips, 2),
        fixed(c?.transactions, 2),
        fixed(c?.xactCommits, 2),
        c === undefined ? "—" : `${c.cpuMsPerCall.toFixed(3)} ms`,
        e === undefined ? "—" : `${e.cpuMsPerCall.toFixed(3)} ms`,
        c === undefined || e === undefined || e.cpuMsPerCall === 0 ? "—" : `${(c.cpuMsPerCall / e.cpuMsPerCall).toFixed(1)}×`,
        w === undefined ? "—" : w.closed.map((r, i) => `${int(r.rps)} (${int(w.echo[i]?.rps)})`).join(", "),
        w === undefined ? "—" : w.open.map((r) => `${ms(r.driver.latency.p95Ms)}`).join(", ") + " ms",
        result.echoOpen === undefined ? "—" : `${ms(result.echoOpen.driver.latency.p95Ms)} ms`,
        "",
      ].join(" | ").trim(),
    );
  }
  return lines.join("\n");
}

const cpuMs = (value: number | undefined): string => (value === undefined ? "—" : `${value.toFixed(3)} ms`);
const percent = (share: number | undefined): string => (share === undefined ? "—" : `${Math.round(share * 100)} %`);

/**
 * Per operation, in its median closed-loop window, whose CPU each call took: our server, this
 * machine's Postgres and Redis processes, the load generator, and all cores together (the rest is
 * the kernel's and other processes'); beside it the echo window's, where the same driver meets a
 * server that does no work. A maximum is reached where the sum fills the machine.
 */
export function machineTable(run: RunSummary): string {
  const lines = [
    "| operation | closed ops/s | machine busy | server | Postgres | Redis | driver | all cores | echo ops/s | echo: machine busy | echo: server | echo: driver | echo: all cores |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
  ];
  for (const result of run.operations) {
    const c = result.closed?.costs;
    const e = result.echo?.costs;
    lines.push(
      [
        "",
        result.operation.name,
        result.closed === undefined ? "—" : int(result.closed.rps),
        percent(c?.machineBusy),
        cpuMs(c?.cpuMsPerCall),
        cpuMs(c?.postgresCpuMsPerCall),
        cpuMs(c?.redisCpuMsPerCall),
        cpuMs(c?.driverCpuMsPerCall),
        cpuMs(c?.machineCpuMsPerCall),
        result.echo === undefined ? "—" : int(result.echo.rps),
        percent(e?.machineBusy),
        cpuMs(e?.cpuMsPerCall),
        cpuMs(e?.driverCpuMsPerCall),
        cpuMs(e?.machineCpuMsPerCall),
        "",
      ].join(" | ").trim(),
    );
  }
  return lines.join("\n");
}

export function renderMarkdown(run: RunSummary, chartFile: string): string {
  const m = run.machine;
  const echo = run.echo?.driver.latency;
  const parts = [
    `# Benchmark ${run.startedAt} (${run.settings.mode})`,
    "",
    `Machine: ${String(m["cpus"])} × ${String(m["cpuModel"])}, ${String(m["memoryGiB"])} GiB, Node ${String(m["node"])}. Backends: ${run.backends}. ` +
      `Driver: ${run.settings.workers} worker threads × ${run.settings.channelsPerWorker} channels; per scenario ${run.settings.warmupMs / 1000} s warm-up + ${run.settings.measureMs / 1000} s measured, ` +
      `open loop at ${run.settings.rateScale === 1 ? "the seed's rate" : `${run.settings.rateScale * 100}% of the seed's rate`} (latency from the scheduled send time), then closed loop with ${run.settings.workers * run.settings.concurrencyPerWorker} calls in flight. ` +
      `Load generator, server, Postgres and Redis share the machine: compare ratios within this run.` +
      (run.loadAverage === undefined ? "" : ` Machine load average (1 min) during the run: ${run.loadAverage.min.toFixed(1)}–${run.loadAverage.max.toFixed(1)} on ${String(m["cpus"])} cores.`),
    "",
    operationsTable(run),
    "",
    run.settings.windows > 1
      ? `Each figure is the median of ${run.settings.windows} windows: P95 of the open-loop windows, ops/s of the closed-loop windows, each run right after an echo window (÷ echo is against the median of those).`
      : "One window per mode (a quick run proves the driver works; its figures are not medians): the closed-loop window runs right after an echo window.",
    "",
    `![P95 per operation](${chartFile})`,
    "",
    "## Cost per call (median closed-loop window)",
    "",
    costsTable(run),
    "",
    "Statements, round trips and transactions are our server's own counts (`database_*_total` ÷ `grpc_calls_total` over the window); " +
      "xact_commit is Postgres's (`pg_stat_database`, flushed about once a second, so ±1 s of the window; every lone statement is one). " +
      "CPU is the process's user + system time over the window ÷ calls it finished.",
    "",
    "## Where the machine's CPU went (median closed-loop window)",
    "",
    machineTable(run),
    "",
    "CPU per call over the same windows: the server's process; every process on this machine named `postgres` (backends, WAL writer, checkpointer, autovacuum) and `redis-server`, when they are local; " +
      "the load generator (the driver's process with its worker threads); all cores together (/proc/stat: user, nice, system, irq and softirq time; idle, I/O wait and steal are not busy), " +
      "so what all cores took beyond the named processes is the kernel's and other processes'. Machine busy is that time's share of all cores' time.",
    "",
    "## Baselines (same run)",
    "",
    "| baseline | ops/s (closed loop) | P50 | P95 | P99 | server (or client) CPU / call | Postgres CPU / call |",
    "|---|---|---|---|---|---|---|",
    echo === undefined || run.echo === undefined
      ? "| bare grpc-js echo (GetContext) | not run | | | | | |"
      : `| bare grpc-js echo (GetContext, fixed response) | ${int(run.echo.rps)} | ${ms(echo.p50Ms)} ms | ${ms(echo.p95Ms)} ms | ${ms(echo.p99Ms)} ms | ${cpuMs(run.echo.costs?.cpuMsPerCall)} | — |`,
    ...run.postgres.map(
      (p) =>
        `| ${p.name} (${run.settings.workers * run.settings.concurrencyPerWorker} in flight, 10 connections) | ${int(p.rps)} | ${ms(p.latency.p50Ms)} ms | ${ms(p.latency.p95Ms)} ms | ${ms(p.latency.p99Ms)} ms | ${cpuMs(p.clientCpuMsPerCall)} (client) | ${cpuMs(p.postgresCpuMsPerCall)} |`,
    ),
    "",
    "A raw baseline's client is the benchmark's own process (postgres.js, one thread); its Postgres CPU is every local `postgres` process's over the loop ÷ calls.",
    "",
    "Errors column: failed + shed (skipped because too many were in flight) calls in the open-loop window; a latency target counts as missed when any occurred.",
    "",
    "## Scale (open loop at " + String(run.settings.scaleRate) + " calls/s; stored contexts trimmed to the pool, then filled in SQL)",
    "",
    scaleTable(run.scale),
    "",
    "## Memory",
    "",
    memoryTable(run.memory),
    "",
    "An active context: one participant holding a KeepAlive stream (one renewal sent, then idle) and one WatchContext watcher (snapshot, then idle), " +
      "each as the participant's own agent; the server is restarted after the contexts are seeded, then RSS is read after a full GC before and after opening them.",
    "",
    "## Read cache",
    "",
    cacheTable(run.cache, run.settings.embedded),
    "",
    "The same get-context scenario against our server (cache on, warmed first) and a server with CACHE_ENABLED=false on the same data, " +
      "windows in the order on, off, off, on; on ÷ off above 1× for throughput and below 1× for P95 means the cache helps.",
    "",
    `Run time ${run.seconds.toFixed(0)} s.`,
  ];
  return parts.join("\n") + "\n";
}

/** A scale P95 above this (at 100 calls/s) means the server could not keep up: no verdict on the ratio. */
const SATURATED_P95_MS = 1_000;

/** Few vs many: P95 at each size, the ratio, and the issue's bound where it sets one. */
export function scaleTable(rows: readonly ScaleRow[]): string {
  if (rows.length === 0) return "(not run: `--only` was given)";
  const windows = windowCount(rows[0]!.small.p95s?.length ?? 1);
  const lines = [`| call | smaller | P95 (median; ${windows}) | larger | P95 (median; ${windows}) | ratio | target |`, "|---|---|---|---|---|---|---|"];
  for (const row of rows) {
    const errs = row.small.report.driver.errors + row.large.report.driver.errors + row.small.report.driver.skipped + row.large.report.driver.skipped;
    // A P95 past a second at this modest rate is a queue behind a saturated server: the ratio of two queues says nothing.
    const saturated = Math.max(row.small.report.driver.latency.p95Ms, row.large.report.driver.latency.p95Ms) > SATURATED_P95_MS;
    const verdict = row.ratio <= (row.bound ?? 0) && errs === 0 && !saturated ? "met" : `**missed**${saturated ? " (saturated: P95 > 1 s)" : ""}`;
    lines.push(
      `| ${row.what} | ${row.small.size} | ${ms(row.small.report.driver.latency.p95Ms)} ms (${(row.small.p95s ?? []).map(ms).join(", ")}) | ${row.large.size} | ${ms(row.large.report.driver.latency.p95Ms)} ms (${(row.large.p95s ?? []).map(ms).join(", ")}) | ${row.ratio.toFixed(2)}×${errs > 0 ? ` (${errs} errors/shed)` : ""} | ${row.bound === undefined ? "—" : `≤ ${row.bound}×: ${verdict}`} |`,
    );
  }
  const cold = rows.find((row) => row.firstPass !== undefined)?.firstPass;
  if (cold !== undefined) {
    lines.push(
      "",
      `Each size's windows follow one first pass over the pool (GetContext at ${cold.rate.toLocaleString("en-US")}/s, not counted), so both start with the pool in the read cache; ` +
        `that pass's own P95, the cold reads right after the fill: ${ms(cold.small)} ms at the smaller size, ${ms(cold.large)} ms at the larger.`,
    );
  }
  return lines.join("\n");
}
