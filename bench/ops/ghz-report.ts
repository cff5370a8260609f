/**
 * Merges what every worker measured in one scenario into ghz's JSON report format — `count`,
 * `total`, `average`, `fastest`, `slowest` (integer ns), `rps`, `latencyDistribution` (10 … 99,
 * plus 99.9), `histogram` (mark in s, count, frequency), `statusCodeDistribution`,
 * `errorDistribution` — with the driver's own counts beside them under `driver`.
 */
import type { CallCosts } from "./call-costs.js";
import { encodeHistogram, ghzLatency, mergeHistograms, summarize, type LatencySummary } from "../fanout/histogram.js";
import { BUCKETS, markSeconds } from "./latency-buckets.js";
import type { UnaryResults } from "./unary-protocol.js";

export interface GhzReport {
  readonly name: string;
  /** Not in ghz: what each call cost the server over the measured window (bench/ops/call-costs.ts), when metered. */
  readonly costs?: CallCosts;
  readonly count: number;
  readonly total: number;
  readonly average: number;
  readonly fastest: number;
  readonly slowest: number;
  readonly rps: number;
  readonly latencyDistribution: ReadonlyArray<{ percentage: number; latency: number }>;
  readonly histogram: ReadonlyArray<{ mark: number; count: number; frequency: number }>;
  readonly statusCodeDistribution: Readonly<Record<string, number>>;
  readonly errorDistribution: Readonly<Record<string, number>>;
  /** Not in ghz: how the driver ran it, and the summary in ms the reports use. */
  readonly driver: {
    readonly mode: "open" | "closed";
    readonly targetRps: number | null;
    readonly concurrency: number | null;
    readonly ok: number;
    readonly errors: number;
    readonly sent: number;
    readonly skipped: number;
    readonly exhausted: number;
    readonly schedulerLagP99Ms: number;
    readonly latency: LatencySummary;
    /** The merged HDR histogram (µs), compressed base64, for re-analysis. */
    readonly hdr: string;
  };
}

const add = (into: Record<string, number>, from: Readonly<Record<string, number>>): void => {
  for (const [key, n] of Object.entries(from)) into[key] = (into[key] ?? 0) + n;
};

/** One scenario's report from the per-worker results; `measureMs` is the window the counts cover. */
export function ghzReport(
  name: string,
  parts: readonly UnaryResults[],
  measureMs: number,
  how: { mode: "open" | "closed"; targetRps: number | null; concurrency: number | null },
): GhzReport {
  const merged = mergeHistograms(parts.map((p) => p.histogram));
  const statusCodeDistribution: Record<string, number> = {};
  const errorDistribution: Record<string, number> = {};
  const buckets = new Array<number>(BUCKETS).fill(0);
  for (const part of parts) {
    add(statusCodeDistribution, part.statusCodes);
    add(errorDistribution, part.errors);
    part.buckets.forEach((n, k) => (buckets[k]! += n));
  }
  const ok = parts.reduce((sum, p) => sum + p.ok, 0);
  const count = Object.values(statusCodeDistribution).reduce((a, b) => a + b, 0);
  const latency = ghzLatency(merged);
  const histogram = buckets.flatMap((n, k) => (n === 0 ? [] : [{ mark: markSeconds(k), count: n, frequency: count === 0 ? 0 : n / count }]));
  const report: GhzReport = {
    name,
    count,
    total: Math.round(measureMs * 1e6),
    average: latency.average,
    fastest: latency.fastest,
    slowest: latency.slowest,
    // Successful calls per second of the window, as a throughput figure should be.
    rps: Math.round((ok / (measureMs / 1000)) * 10) / 10,
    latencyDistribution: latency.latencyDistribution,
    histogram,
    statusCodeDistribution,
    errorDistribution,
    driver: {
      ...how,
      ok,
      errors: count - ok,
      sent: parts.reduce((sum, p) => sum + p.sent, 0),
      skipped: parts.reduce((sum, p) => sum + p.skipped, 0),
      exhausted: parts.reduce((sum, p) => sum + p.exhausted, 0),
      schedulerLagP99Ms: Math.max(0, ...parts.map((p) => p.lagP99Ms)),
      latency: summarize(merged),
      hdr: parts.length === 0 ? "" : encodeHistogram(merged),
    },
  };
  merged.destroy();
  return report;
}
