/**
 * The run's markdown report: per operation the seed's figures, ours at the seed's rate, our maximum
 * throughput, its ratio to the bare grpc-js ceiling of the same run, and whether issue 7's targets
 * are met; then the baselines and how the run was made.
 */
import type { GhzReport } from "./ghz-report.js";
import { throughputTarget, type Operation } from "./operations.js";
import type { RawFigures } from "./postgres-baseline.js";
import type { ScaleRow } from "./scale.js";
import type { DriverSettings } from "./settings.js";

export interface OperationResult {
  readonly operation: Operation;
  readonly open?: GhzReport;
  readonly closed?: GhzReport;
  readonly error?: string;
}

export interface RunSummary {
  readonly startedAt: string;
  readonly settings: DriverSettings;
  readonly machine: Record<string, unknown>;
  readonly backends: string;
  readonly echo?: GhzReport;
  readonly postgres: readonly RawFigures[];
  readonly operations: readonly OperationResult[];
  readonly scale: readonly ScaleRow[];
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
  const echoRps = run.echo?.rps;
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

export function renderMarkdown(run: RunSummary, chartFile: string): string {
  const m = run.machine;
  const echo = run.echo?.driver.latency;
  const parts = [
    `# Benchmark ${run.startedAt} (${run.settings.mode})`,
    "",
    `Machine: ${String(m["cpus"])} × ${String(m["cpuModel"])}, ${String(m["memoryGiB"])} GiB, Node ${String(m["node"])}. Backends: ${run.backends}. ` +
      `Driver: ${run.settings.workers} worker threads × ${run.settings.channelsPerWorker} channels; per scenario ${run.settings.warmupMs / 1000} s warm-up + ${run.settings.measureMs / 1000} s measured, ` +
      `open loop at ${run.settings.rateScale === 1 ? "the seed's rate" : `${run.settings.rateScale * 100}% of the seed's rate`} (latency from the scheduled send time), then closed loop with ${run.settings.workers * run.settings.concurrencyPerWorker} calls in flight. ` +
      `Load generator, server, Postgres and Redis share the machine: compare ratios within this run.`,
    "",
    operationsTable(run),
    "",
    `![P95 per operation](${chartFile})`,
    "",
    "## Baselines (same run)",
    "",
    "| baseline | ops/s (closed loop) | P50 | P95 | P99 |",
    "|---|---|---|---|---|",
    echo === undefined || run.echo === undefined ? "| bare grpc-js echo (GetContext) | not run | | | |" : `| bare grpc-js echo (GetContext, fixed response) | ${int(run.echo.rps)} | ${ms(echo.p50Ms)} ms | ${ms(echo.p95Ms)} ms | ${ms(echo.p99Ms)} ms |`,
    ...run.postgres.map((p) => `| ${p.name} (${run.settings.workers * run.settings.concurrencyPerWorker} in flight, 10 connections) | ${int(p.rps)} | ${ms(p.latency.p50Ms)} ms | ${ms(p.latency.p95Ms)} ms | ${ms(p.latency.p99Ms)} ms |`),
    "",
    "Errors column: failed + shed (skipped because too many were in flight) calls in the open-loop window; a latency target counts as missed when any occurred.",
    "## Scale (same server, open loop at " + String(run.settings.scaleRate) + " calls/s)",
    "",
    scaleTable(run.scale),
    "",
    "Not in this report yet (issue 7 item 5): server memory per active context (KeepAlive participant + watcher).",
    "",
    `Run time ${run.seconds.toFixed(0)} s.`,
  ];
  return parts.join("\n") + "\n";
}

/** Few vs many: P95 at each size, the ratio, and the issue's bound where it sets one. */
export function scaleTable(rows: readonly ScaleRow[]): string {
  if (rows.length === 0) return "(not run: `--only` was given)";
  const lines = ["| call | smaller | P95 | larger | P95 | ratio | target |", "|---|---|---|---|---|---|---|"];
  for (const row of rows) {
    const errs = row.small.report.driver.errors + row.large.report.driver.errors + row.small.report.driver.skipped + row.large.report.driver.skipped;
    lines.push(
      `| ${row.what} | ${row.small.size} | ${ms(row.small.report.driver.latency.p95Ms)} ms | ${row.large.size} | ${ms(row.large.report.driver.latency.p95Ms)} ms | ${row.ratio.toFixed(2)}×${errs > 0 ? ` (${errs} errors/shed)` : ""} | ${row.bound === undefined ? "—" : `≤ ${row.bound}×: ${row.ratio <= row.bound && errs === 0 ? "met" : "**missed**"}`} |`,
    );
  }
  return lines.join("\n");
}
