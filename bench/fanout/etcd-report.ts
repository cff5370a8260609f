/**
 * Ours beside etcd, from the same run (issue 16's targets): delivery latency per scenario, our
 * P95 over etcd's (each etcd round shown, the median compared), memory per watch, and the commit
 * acknowledged at the writer (our UpdateSharedState round trip, etcd's put).
 */
import type { EtcdOutcome, EtcdScenario } from "./etcd.js";
import type { ReplayResult } from "./replay.js";
import type { ScenarioOutcome } from "./report.js";
import type { FanoutResult } from "./run-fanout.js";

/** Issue 16's targets against etcd. */
export const ETCD_TARGETS = { p95RatioToEtcd: 1, twoInstancesRatioToOne: 1.25, bytesPerWatch: 2_048, replayPerSecond: 10_000 } as const;

const ok = (o: ScenarioOutcome | undefined): o is FanoutResult => o !== undefined && !("error" in o);
const ms = (x: number): string => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
/** The median; of an even count, the mean of the middle two. */
function median(xs: readonly number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export interface EtcdComparison {
  readonly scenario: "a" | "b";
  readonly etcdP95Ms: readonly number[];
  readonly oursP95Ms: number;
  readonly ratio: number;
  readonly met: boolean;
}

/** Our P95 over etcd's median P95, per scenario both sides ran. */
export function compareWithEtcd(outcomes: readonly ScenarioOutcome[], rounds: readonly EtcdOutcome[]): EtcdComparison[] {
  const ran = rounds.flatMap((r) => (r.ran ? [r] : []));
  const comparisons: EtcdComparison[] = [];
  for (const [scenario, ours] of [["a", outcomes.find((o) => o.name === "a-one-instance")], ["b", outcomes.find((o) => o.name === "b-ours")]] as const) {
    const etcd = ran.flatMap((r) => r.scenarios.filter((s) => s.test === scenario));
    if (!ok(ours) || etcd.length === 0) continue;
    const etcdP95Ms = etcd.map((s) => s.delivery.p95Ms);
    const ratio = ours.latency.p95Ms / median(etcdP95Ms);
    comparisons.push({ scenario, etcdP95Ms, oursP95Ms: ours.latency.p95Ms, ratio, met: ratio <= ETCD_TARGETS.p95RatioToEtcd });
  }
  return comparisons;
}

function etcdLine(label: string, s: EtcdScenario): string {
  const d = s.delivery;
  return `  ${label.padEnd(36)} ${String(s.watchers).padStart(7)} ${String(s.keys).padStart(8)} ${String(s.putsPerSecond).padStart(9)} ${String(s.deliveriesPerSecond).padStart(12)} ${ms(d.p50Ms).padStart(7)} ${ms(d.p95Ms).padStart(7)} ${ms(d.p99Ms).padStart(7)} ${ms(d.p999Ms).padStart(7)}   put ack p50/p95 ${ms(s.putAck.p50Ms)}/${ms(s.putAck.p95Ms)} ms, ${s.bytesPerWatcher === null || s.bytesPerWatcher < 0 ? "? (RSS fell: the previous scenario's memory was returned)" : `${(s.bytesPerWatcher / 1024).toFixed(1)} KB`} per watcher, server CPU ${s.serverCpuPercent ?? "?"}%${s.putErrors > 0 ? `, ${s.putErrors} put errors` : ""}`;
}

export function renderEtcd(outcomes: readonly ScenarioOutcome[], rounds: readonly EtcdOutcome[]): string {
  const lines = ["", "etcd beside ours, same run (etcd3 on the same grpc-js: 10 clients, one multiplexed Watch stream each; latency from each put's intended send time)"];
  const ran = rounds.flatMap((r, i) => (r.ran ? [{ round: i + 1, ...r }] : []));
  for (const r of rounds) if (!r.ran) lines.push(`  not run: ${r.why}`);
  if (ran.length === 0) return lines.join("\n");
  // `--only c`: etcd's replay is in the replay section.
  if (ran.every((r) => r.scenarios.length === 0)) return "";
  lines.push(`  ${ran[0]!.version}; rounds: ${rounds.length === 2 ? "one before ours, one after" : "one, before ours"}`);
  lines.push(`  ${"".padEnd(36)} ${"watches".padStart(7)} ${"keys".padStart(8)} ${"puts/s".padStart(9)} ${"deliveries/s".padStart(12)} ${"p50".padStart(7)} ${"p95".padStart(7)} ${"p99".padStart(7)} ${"p99.9".padStart(7)}`);
  for (const r of ran) for (const s of r.scenarios) lines.push(etcdLine(`etcd (${s.test}) round ${r.round}`, s));
  lines.push("", "targets (issue 16: ours against etcd in the same run; etcd's median P95 over its rounds)");
  for (const c of compareWithEtcd(outcomes, rounds)) {
    lines.push(`  (${c.scenario}) our P95 ${ms(c.oursP95Ms)} ms ≤ etcd's ${c.etcdP95Ms.map(ms).join(" / ")} ms: ${c.ratio.toFixed(2)}×  ${c.met ? "met" : "MISSED"}`);
  }
  const one = outcomes.find((o) => o.name === "a-one-instance");
  const two = outcomes.find((o) => o.name === "a-two-instances");
  if (ok(one) && ok(two)) {
    const ratio = two.latency.p95Ms / one.latency.p95Ms;
    lines.push(`  (a) two instances ≤ ${ETCD_TARGETS.twoInstancesRatioToOne}× one: ${ms(two.latency.p95Ms)} / ${ms(one.latency.p95Ms)} ms = ${ratio.toFixed(2)}×  ${ratio <= ETCD_TARGETS.twoInstancesRatioToOne ? "met" : "MISSED"}`);
  }
  if (ok(one)) {
    const perWatch = one.servers.find((s) => s.streams > 0)?.bytesPerStream ?? 0;
    lines.push(`  memory per watch ≤ 2 KB at ${one.settings.watchers} (a, one instance): ${(perWatch / 1024).toFixed(1)} KB  ${perWatch <= ETCD_TARGETS.bytesPerWatch ? "met" : "MISSED"}`);
  }
  return lines.join("\n");
}

/** (c): our replay rate beside etcd's, and the target. */
export function renderReplay(replay: ReplayResult, rounds: readonly EtcdOutcome[]): string {
  const reps = (r: { reps: ReadonlyArray<{ ms: number; firstMs: number; perSecond: number }> }): string =>
    r.reps.map((x) => `${x.perSecond}/s (${x.ms} ms, first after ${x.firstMs} ms)`).join(", ");
  const lines = ["", `(c) replay: a new watch from ${replay.revisions} revisions back (written in ${replay.writeSeconds} s), three repetitions`];
  lines.push(`  ours: median ${replay.medianPerSecond} revisions/s: ${reps(replay)}`);
  for (const [i, round] of rounds.entries()) {
    if (!round.ran) continue;
    for (const r of round.replays) lines.push(`  etcd round ${i + 1}: median ${r.medianPerSecond} revisions/s: ${reps(r)}`);
  }
  const met = replay.medianPerSecond >= ETCD_TARGETS.replayPerSecond;
  lines.push(`  target ≥ ${ETCD_TARGETS.replayPerSecond} revisions/s: ${met ? "met" : "MISSED"}`);
  return lines.join("\n");
}
