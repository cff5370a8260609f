/**
 * GetContext with the read cache on and off, in one run (issue 5): the same get-context scenario,
 * closed loop (maximum throughput) and open loop at a fixed rate (P95), against our server as it
 * runs (cache on, the default) and against a server with CACHE_ENABLED=false on the same data.
 * The windows run in the order on, off, off, on (closed, closed, open, open), so a machine that
 * gets busier or quieter through the run does not favour one side as much.
 */
import type { GhzReport } from "./ghz-report.js";
import type { SeedItem } from "./unary-protocol.js";

export interface CacheSide {
  readonly closed: GhzReport;
  readonly open: GhzReport;
}

export interface CacheComparison {
  /** The open loop's rate (calls/s). */
  readonly rate: number;
  readonly on: CacheSide;
  readonly off: CacheSide;
}

export interface CacheCompareOptions {
  /** Runs get-context against `address` in one mode (the driver's measure()). */
  measure(address: string, mode: "open" | "closed", rate: number, items: readonly SeedItem[]): Promise<GhzReport>;
  /** Our server as it runs (cache on). */
  cachedAddress(): string;
  /** Serves the same data with CACHE_ENABLED=false while `work` runs, then puts things back as they were. */
  withUncached<T>(work: (address: string) => Promise<T>): Promise<T>;
  readonly items: readonly SeedItem[];
  readonly rate: number;
  log(line: string): void;
}

const brief = (r: GhzReport): string => `${r.rps.toFixed(0)} ok/s, p95 ${r.driver.latency.p95Ms} ms`;

export async function compareCache(o: CacheCompareOptions): Promise<CacheComparison> {
  // Warm the cached side's caches first: a cold cache is a different (and passing) condition.
  await o.measure(o.cachedAddress(), "closed", 0, o.items);
  const onClosed = await o.measure(o.cachedAddress(), "closed", 0, o.items);
  o.log(`  cache on, closed loop: ${brief(onClosed)}`);
  const off = await o.withUncached(async (address) => {
    const closed = await o.measure(address, "closed", 0, o.items);
    o.log(`  cache off, closed loop: ${brief(closed)}`);
    const open = await o.measure(address, "open", o.rate, o.items);
    o.log(`  cache off, open loop at ${o.rate}/s: ${brief(open)}`);
    return { closed, open };
  });
  // Warmed again, not counted: on PGlite the cached side is a new process now (withUncached
  // stopped it to free the data directory), its cache and its JIT cold. Unwarmed, its window
  // measured that start (P95 ~2 s at 2,000/s, with calls turned away), not the cache.
  await o.measure(o.cachedAddress(), "closed", 0, o.items);
  const onOpen = await o.measure(o.cachedAddress(), "open", o.rate, o.items);
  o.log(`  cache on, open loop at ${o.rate}/s: ${brief(onOpen)}`);
  return { rate: o.rate, on: { closed: onClosed, open: onOpen }, off };
}

/** The report's table: both sides, and on ÷ off. */
export function cacheTable(result: CacheComparison | undefined, embedded: boolean): string {
  const lines = [
    "| GetContext (BASIC) | max ops/s (closed loop) | P50 / P95 / P99 at max | P95 at a fixed rate | errors |",
    "|---|---|---|---|---|",
  ];
  if (result === undefined) return [...lines, "| cache on vs off | not run | | | |"].join("\n");
  const ms = (v: number): string => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
  const row = (label: string, side: CacheSide): string => {
    const c = side.closed.driver.latency;
    const errors = side.closed.driver.errors + side.open.driver.errors + side.open.driver.skipped;
    return `| ${label} | ${side.closed.rps.toFixed(0)} | ${ms(c.p50Ms)} / ${ms(c.p95Ms)} / ${ms(c.p99Ms)} ms | ${ms(side.open.driver.latency.p95Ms)} ms at ${result.rate}/s | ${errors} |`;
  };
  const ratio = (a: number, b: number): string => (b > 0 ? `${(a / b).toFixed(2)}×` : "—");
  lines.push(row(embedded ? "cache on (L1 only: no Redis)" : "cache on (L1 + L2 with Redis)", result.on), row("cache off (CACHE_ENABLED=false)", result.off));
  lines.push(
    `| on ÷ off | ${ratio(result.on.closed.rps, result.off.closed.rps)} | P95 ${ratio(result.on.closed.driver.latency.p95Ms, result.off.closed.driver.latency.p95Ms)} | ${ratio(result.on.open.driver.latency.p95Ms, result.off.open.driver.latency.p95Ms)} | |`,
  );
  return lines.join("\n");
}
