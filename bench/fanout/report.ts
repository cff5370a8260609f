/**
 * The run's outputs: a table on stdout with the targets beside our figures, and a JSON file
 * (bench/results/fanout-<timestamp>.json) with every figure, the settings and the machine.
 */
import { execFileSync } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { cpus, totalmem } from "node:os";
import { join } from "node:path";
import type { EtcdOutcome } from "./etcd.js";
import { compareWithEtcd } from "./etcd-report.js";
import type { LatencySummary } from "./histogram.js";
import { REPO_ROOT } from "./processes.js";
import type { ReplayResult } from "./replay.js";
import { WATCH_STREAMS, type FanoutResult } from "./run-fanout.js";
import type { FanoutSettings } from "./settings.js";

/** Issue 4's targets for this machine, and the seed's figure they improve on. */
export const TARGETS = {
  spreadP95Ms: 20,
  seedStateSyncP95Ms: 200,
  hotRatioToBare: 1.5,
} as const;

/** A scenario that could not be measured, and why. */
export interface FailedScenario {
  readonly name: string;
  readonly title: string;
  readonly error: string;
}

export type ScenarioOutcome = FanoutResult | FailedScenario;

const failed = (outcome: ScenarioOutcome): outcome is FailedScenario => "error" in outcome;

export interface Verdicts {
  /** (a): P95 per run, and whether it is under the target. */
  readonly spread: Array<{ name: string; p95Ms: number; met: boolean }>;
  /** (b): our P95 over the bare server's. */
  readonly hot: { oursP95Ms: number; bareP95Ms: number; ratio: number; met: boolean } | undefined;
}

export function verdicts(outcomes: readonly ScenarioOutcome[]): Verdicts {
  const ok = outcomes.filter((o): o is FanoutResult => !failed(o));
  const spread = ok.filter((o) => o.name.startsWith("a-")).map((o) => ({ name: o.name, p95Ms: o.latency.p95Ms, met: o.latency.count > 0 && o.latency.p95Ms < TARGETS.spreadP95Ms }));
  const ours = ok.find((o) => o.name === "b-ours");
  const bare = ok.find((o) => o.name === "b-bare");
  const hot =
    ours !== undefined && bare !== undefined && bare.latency.p95Ms > 0
      ? {
          oursP95Ms: ours.latency.p95Ms,
          bareP95Ms: bare.latency.p95Ms,
          ratio: Math.round((ours.latency.p95Ms / bare.latency.p95Ms) * 100) / 100,
          met: ours.latency.p95Ms / bare.latency.p95Ms <= TARGETS.hotRatioToBare,
        }
      : undefined;
  return { spread, hot };
}

export function machine(): Record<string, unknown> {
  const cores = cpus();
  return { cpus: cores.length, cpuModel: cores[0]?.model ?? "unknown", memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version, platform: process.platform };
}

const pad = (text: string | number, width: number): string => String(text).padStart(width);
const ms = (value: number): string => (value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2));
const kb = (bytes: number): string => `${(bytes / 1024).toFixed(1)} KB`;
const mb = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(0)} MB`;
const codes = (counts: Readonly<Record<string, number>>): string =>
  Object.entries(counts)
    .map(([code, n]) => `${code} ${n}`)
    .join(", ") || "none";

function errorCount(result: FanoutResult): number {
  const sum = (counts: Readonly<Record<string, number>>): number => Object.values(counts).reduce((a, b) => a + b, 0);
  return sum(result.commits.errorsByCode) + sum(result.streamEndsByCode) + sum(result.open.failedByCode);
}

function row(title: string, streams: number | string, contexts: number | string, rate: number | string, perSecond: number | string, latency: LatencySummary, missing: number | string, errors: number | string): string {
  return [
    title.padEnd(34),
    pad(streams, 7),
    pad(contexts, 8),
    pad(rate, 9),
    pad(perSecond, 12),
    pad(ms(latency.p50Ms), 7),
    pad(ms(latency.p95Ms), 7),
    pad(ms(latency.p99Ms), 7),
    pad(ms(latency.p999Ms), 7),
    pad(ms(latency.maxMs), 7),
    pad(missing, 8),
    pad(errors, 7),
  ].join(" ");
}

/** The human-readable report. */
export function renderTable(outcomes: readonly ScenarioOutcome[], settings: FanoutSettings): string {
  const lines: string[] = [];
  const m = machine();
  lines.push("");
  lines.push(`fan-out benchmark (${settings.mode}) — ${m["cpus"]} × ${m["cpuModel"]}, ${m["memoryGiB"]} GiB, Node ${m["node"]}`);
  lines.push("driver, servers, Postgres and Redis share this machine: read ratios rather than absolute figures");
  lines.push(
    settings.rpc === "watch"
      ? `our watchers: watches of Watch streams (about ${WATCH_STREAMS} streams per scenario, as etcd's anchor spreads its watchers); the bare server's: a WatchContext stream each`
      : "our watchers and the bare server's: a WatchContext stream each (≤ 500 per connection)",
  );
  lines.push("");
  lines.push("commit→delivery latency per delivery (ms: commit stamped by the writer → message decoded by the watcher)");
  lines.push(
    [
      "scenario".padEnd(34),
      pad("watches", 7),
      pad("contexts", 8),
      pad("commits/s", 9),
      pad("deliveries/s", 12),
      pad("p50", 7),
      pad("p95", 7),
      pad("p99", 7),
      pad("p99.9", 7),
      pad("max", 7),
      pad("missing", 8),
      pad("errors", 7),
    ].join(" "),
  );
  for (const outcome of outcomes) {
    if (failed(outcome)) {
      lines.push(`${outcome.title.padEnd(34)} FAILED: ${outcome.error.split("\n")[0]}`);
      continue;
    }
    const r = outcome;
    lines.push(row(r.title, r.open.opened, r.settings.contexts, r.commits.perSecond, r.deliveries.perSecond, r.latency, r.deliveries.missing, errorCount(r)));
    const labels = Object.keys(r.latencyByServer);
    if (labels.length > 1) {
      for (const label of labels) {
        const server = r.servers.find((s) => s.label === label);
        const how = label === "A" ? "the writes' instance" : "via Redis doorbell";
        lines.push(row(`  on ${label} (${how})`, server?.streams ?? "", "", "", "", r.latencyByServer[label]!, "", ""));
      }
    }
  }
  const v = verdicts(outcomes);
  lines.push("");
  lines.push("targets (issue 4, this 2-core machine)");
  for (const s of v.spread) {
    lines.push(`  (a) P95 < ${TARGETS.spreadP95Ms} ms (seed: state sync P95 < ${TARGETS.seedStateSyncP95Ms} ms): ${s.name} ${ms(s.p95Ms)} ms  ${s.met ? "met" : "MISSED"}`);
  }
  if (v.hot !== undefined) {
    lines.push(
      `  (b) P95 within ${TARGETS.hotRatioToBare}× bare grpc-js: ours ${ms(v.hot.oursP95Ms)} ms / bare ${ms(v.hot.bareP95Ms)} ms = ${v.hot.ratio.toFixed(2)}×  ${v.hot.met ? "met" : "MISSED"}`,
    );
  }
  lines.push("");
  lines.push("server memory per open watch ((RSS with the watches open and idle − RSS before) / watches; a watch is a stream or a watch of a Watch stream)");
  for (const outcome of outcomes) {
    if (failed(outcome)) continue;
    for (const s of outcome.servers) {
      if (s.streams === 0) continue;
      lines.push(`  ${`${outcome.title}, ${s.label}`.padEnd(36)} ${pad(s.streams, 6)} watches: ${mb(s.rssIdleBytes)} → ${mb(s.rssWatchingBytes)}  ≈ ${kb(s.bytesPerStream)} per watch`);
    }
  }
  lines.push("");
  lines.push("during the measured window");
  for (const outcome of outcomes) {
    if (failed(outcome)) continue;
    const r = outcome;
    const servers = r.servers.map((s) => `${s.label} ${s.cpuPercent}%`).join(", ");
    lines.push(
      `  ${r.title.padEnd(34)} CPU (% of one core): server ${servers}, driver ${r.driverCpuPercent}%; machine ${r.machineBusyPercent}% busy, load ${r.loadAverage}` +
        ` | commit RTT p50 ${ms(r.commits.latency.p50Ms)} p95 ${ms(r.commits.latency.p95Ms)} ms, schedule lag p99 ${ms(r.commits.scheduleLag.p99Ms)} ms, skipped ${r.commits.skipped}` +
        ` | payload ${r.deliveries.payloadBytes.min}–${r.deliveries.payloadBytes.max} B | repeated ${r.deliveries.repeated}, gaps ${r.deliveries.gaps}` +
        ` | errors: writes ${codes(r.commits.errorsByCode)}; stream ends ${codes(r.streamEndsByCode)}; opens ${codes(r.open.failedByCode)}`,
    );
  }
  lines.push("");
  return lines.join("\n");
}

/** The commit the servers ran, and whether src/ had uncommitted changes (others may edit it during a run). */
function sourceRevision(): { commit: string; srcDirty: boolean } | undefined {
  try {
    const git = (...args: string[]): string => execFileSync("git", args, { cwd: REPO_ROOT, encoding: "utf8" }).trim();
    return { commit: git("rev-parse", "HEAD"), srcDirty: git("status", "--porcelain", "src", "gen", "migrations") !== "" };
  } catch {
    return undefined;
  }
}

/** Writes the JSON report; returns its path. */
export async function writeJson(
  outcomes: readonly ScenarioOutcome[],
  settings: FanoutSettings,
  startedAt: Date,
  etcd: readonly EtcdOutcome[] = [],
  replay: ReplayResult | undefined = undefined,
): Promise<string> {
  const dir = join(REPO_ROOT, "bench", "results");
  await mkdir(dir, { recursive: true });
  const stamp = startedAt.toISOString().replace(/[:.]/g, "-");
  const path = join(dir, `fanout-${stamp}.json`);
  const { databaseUrl: _databaseUrl, redisUrl: _redisUrl, ...shareable } = settings;
  const report = {
    benchmark: "fanout",
    mode: settings.mode,
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    machine: machine(),
    source: sourceRevision(),
    backends: "Postgres (throwaway database per scenario) + Redis doorbell (random key prefix), servers as separate processes",
    settings: shareable,
    targets: TARGETS,
    verdicts: verdicts(outcomes),
    scenarios: outcomes,
    replay,
    etcd: { rounds: etcd, comparison: compareWithEtcd(outcomes, etcd) },
  };
  await writeFile(path, `${JSON.stringify(report, null, 2)}\n`);
  return path;
}
