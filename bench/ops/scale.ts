/**
 * Scale (issue 7 item 5): P95 of GetContext and ListContexts with few vs many stored contexts
 * (10,000 vs 1,000,000 in a full run), and of ListParticipants on a context of 10 vs 1,000
 * members — each open loop at one modest fixed rate, so the comparison shows what the data size
 * costs and not a saturated server.
 *
 * The many contexts are written straight into the database by INSERT … SELECT over generate_series
 * (stored-contexts.ts), not through the API: 1,000,000 take well under a minute on Postgres and on
 * PGlite. `fill` does that for the run's backend (on PGlite it stops the server around the fill).
 */
import type { GhzReport } from "./ghz-report.js";
import type { Seeder } from "./seed-data.js";
import type { SeedItem } from "./unary-protocol.js";

export interface ScaleRow {
  readonly what: string;
  /**
   * GetContext's first pass over the pool after each fill (its rate, and its P95 at each size): the
   * cold reads, shown beside the measured windows, which start warm at both sizes.
   */
  readonly firstPass?: { readonly rate: number; readonly small: number; readonly large: number };
  /** The median window by P95 of three, and the P95 of each window. */
  readonly small: { readonly size: string; readonly report: GhzReport; readonly p95s: readonly number[] };
  readonly large: { readonly size: string; readonly report: GhzReport; readonly p95s: readonly number[] };
  /** Large P95 ÷ small P95. */
  readonly ratio: number;
  /** Issue 7's bound on that ratio, where it sets one. */
  readonly bound: number | undefined;
}

/** Measures one config open loop at `rate` with these items (main.ts's measure, bound to a run). */
export type Measure = (operation: string, rate: number, items: readonly SeedItem[]) => Promise<GhzReport>;

/**
 * Brings the contexts table to `total` rows by copying the context `templateId`, first deleting all
 * but `keep` when it holds more; returns the rows added and the rows stored.
 */
export type Fill = (templateId: string, total: number, keep: readonly string[]) => Promise<{ readonly added: number; readonly stored: number }>;

interface Windows {
  readonly report: GhzReport;
  readonly p95s: readonly number[];
}

/**
 * The first pass's rate: its 2 s warm-up and 5 s window read every context of the 1,000-context
 * pool several times over, so the windows after it find each one in the read cache.
 */
const WARM_RATE = 1_000;

/** `count` windows of one measurement: the report keeps the median by P95 (this machine's noise is ±40 %). */
async function windows(measure: Measure, count: number, operation: string, rate: number, items: readonly SeedItem[]): Promise<Windows> {
  const reports: GhzReport[] = [];
  for (let i = 0; i < count; i++) reports.push(await measure(operation, rate, items));
  const byP95 = [...reports].sort((a, b) => a.driver.latency.p95Ms - b.driver.latency.p95Ms);
  return { report: byP95[Math.floor(count / 2)]!, p95s: reports.map((r) => r.driver.latency.p95Ms) };
}

const ratioOf = (large: GhzReport, small: GhzReport): number =>
  small.driver.latency.p95Ms === 0 ? 0 : Math.round((large.driver.latency.p95Ms / small.driver.latency.p95Ms) * 100) / 100;

export async function runScale(
  options: { fill: Fill; rate: number; windows: number; smallContexts: number; largeContexts: number },
  pool: readonly SeedItem[],
  seeder: Seeder,
  measure: Measure,
  log: (line: string) => void,
): Promise<ScaleRow[]> {
  const rows: ScaleRow[] = [];
  const { rate } = options;
  // ListParticipants: the pool's contexts have 10 members; one context gets 1,000.
  const [big] = await seeder.createContexts(1, 1000);
  await seeder.addMembers([big!], 1000);
  const few = await windows(measure, options.windows, "list-participants", rate, pool);
  const many = await windows(measure, options.windows, "list-participants", rate, [{ contextId: big! }]);
  rows.push({ what: "ListParticipants (page of 20)", small: { size: "10 members", ...few }, large: { size: "1,000 members", ...many }, ratio: ratioOf(many.report, few.report), bound: undefined });
  log(`scale: ListParticipants p95 ${few.p95s.join(", ")} ms at 10 members, ${many.p95s.join(", ")} ms at 1,000`);
  const stored = async (total: number): Promise<{ count: number; firstPass: number; get: Windows; list: Windows }> => {
    const started = Date.now();
    const { added, stored: count } = await options.fill(pool[0]!.contextId, total, pool.map((p) => p.contextId));
    log(`scale: ${count.toLocaleString("en-US")} contexts stored (${added.toLocaleString("en-US")} added in ${((Date.now() - started) / 1000).toFixed(0)} s)`);
    // The fill takes longer than the in-process cache keeps an entry (and on PGlite restarts the
    // server): without a first pass, the larger size's first window would measure cold reads the
    // smaller size's did not. Both sizes get the same pass; its P95 is reported as the cold figure.
    const firstPass = (await measure("get-context", WARM_RATE, pool)).driver.latency.p95Ms;
    log(`scale: GetContext first pass over the pool at ${WARM_RATE}/s: p95 ${firstPass} ms`);
    return { count, firstPass, get: await windows(measure, options.windows, "get-context", rate, pool), list: await windows(measure, options.windows, "list-contexts", rate, pool) };
  };
  const small = await stored(options.smallContexts);
  const large = await stored(options.largeContexts);
  const size = (n: number): string => `${n.toLocaleString("en-US")} contexts`;
  for (const [what, s, l] of [
    ["GetContext", small.get, large.get],
    ["ListContexts (page of 20, type filter)", small.list, large.list],
  ] as const) {
    const firstPass = what === "GetContext" ? { firstPass: { rate: WARM_RATE, small: small.firstPass, large: large.firstPass } } : {};
    rows.push({ what, ...firstPass, small: { size: size(small.count), ...s }, large: { size: size(large.count), ...l }, ratio: ratioOf(l.report, s.report), bound: 1.25 });
    log(`scale: ${what} p95 ${s.p95s.join(", ")} ms → ${l.p95s.join(", ")} ms`);
  }
  return rows;
}
