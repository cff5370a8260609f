/**
 * `npm run bench:fanout [-- --quick]`: issue 4's fan-out benchmark. A benchmark, not a test — it
 * prints figures and the targets beside them and never fails on timing (the exit code is non-zero
 * only when a scenario could not run at all).
 *
 * Each scenario starts its own server processes on a throwaway Postgres database and a random Redis
 * prefix, drives them from worker threads, and tears everything down — also on Ctrl-C, on errors,
 * and when the whole run outlives its deadline.
 */
import { runEtcd, type EtcdOutcome } from "./etcd.js";
import { renderEtcd, renderReplay } from "./etcd-report.js";
import { replayScenario, type ReplayResult } from "./replay.js";
import { renderTable, writeJson, type ScenarioOutcome } from "./report.js";
import { Cleanup } from "./resources.js";
import type { FanoutResult } from "./run-fanout.js";
import { hotScenarioBare, hotScenarioOurs, spreadScenario } from "./scenarios.js";
import { readSettings, USAGE, type FanoutSettings } from "./settings.js";

const cleanup = new Cleanup();

/** Ctrl-C, a kill, or the deadline: give back everything borrowed, then leave. */
function abandon(why: string, code: number): void {
  console.error(`\n${why}: stopping servers and workers, dropping databases…`);
  void cleanup.runAll().finally(() => process.exit(code));
}

async function attempt(name: string, title: string, run: () => Promise<FanoutResult>): Promise<ScenarioOutcome> {
  if (cleanup.closing) return { name, title, error: "not run: the run was abandoned" };
  process.stdout.write(`${title}\n`);
  try {
    return await run();
  } catch (error) {
    if (cleanup.closing) return { name, title, error: "abandoned" };
    console.error(`  ${title} failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    return { name, title, error: error instanceof Error ? error.message : String(error) };
  }
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
  const { settings, only } = parsed;
  process.once("SIGINT", () => abandon("interrupted", 130));
  process.once("SIGTERM", () => abandon("terminated", 143));
  const deadline = setTimeout(() => abandon(`the run took longer than ${settings.deadlineMs / 60_000} min`, 1), settings.deadlineMs);
  const startedAt = new Date();
  describe(settings);
  const outcomes: ScenarioOutcome[] = [];
  const etcd: EtcdOutcome[] = [];
  let replay: ReplayResult | undefined;
  let replayFailed = false;
  // etcd runs before ours and (full size) again after, so the comparison spans the same stretch of this noisy machine's time.
  const etcdRound = async (): Promise<void> => {
    if (!settings.etcd || cleanup.closing) return;
    process.stdout.write("etcd, same scenarios\n");
    try {
      etcd.push(await runEtcd(settings, only, cleanup));
    } catch (error) {
      etcd.push({ ran: false, why: error instanceof Error ? error.message : String(error) });
    }
  };
  try {
    await etcdRound();
    if (only !== "b" && only !== "c") {
      outcomes.push(await attempt("a-one-instance", "(a) one instance", () => spreadScenario(1, settings, cleanup)));
      outcomes.push(await attempt("a-two-instances", "(a) two instances", () => spreadScenario(2, settings, cleanup)));
    }
    if (only === undefined || only === "c") {
      process.stdout.write("(c) replay\n");
      try {
        replay = await replayScenario(settings, cleanup);
      } catch (error) {
        if (!cleanup.closing) console.error(`  (c) replay failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
        replayFailed = true;
      }
    }
    if (only !== "a" && only !== "c") {
      // The baseline first, then ours, one after the other so neither takes CPU from the other.
      outcomes.push(await attempt("b-bare", "(b) bare grpc-js, one context", () => hotScenarioBare(settings, cleanup)));
      outcomes.push(await attempt("b-ours", "(b) ours, one context", () => hotScenarioOurs(settings, cleanup)));
    }
    if (settings.mode === "full" && etcd.some((r) => r.ran)) await etcdRound();
  } finally {
    await cleanup.runAll();
    clearTimeout(deadline);
  }
  console.log(renderTable(outcomes, settings));
  if (replay !== undefined) console.log(renderReplay(replay, etcd));
  if (settings.etcd) console.log(renderEtcd(outcomes, etcd));
  const path = await writeJson(outcomes, settings, startedAt, etcd, replay);
  console.log(`JSON report: ${path} (${((Date.now() - startedAt.getTime()) / 1000).toFixed(0)} s)`);
  return outcomes.some((o) => "error" in o) || replayFailed ? 1 : 0;
}

function describe(settings: FanoutSettings): void {
  const { spread, hot } = settings;
  console.log(
    `fan-out (${settings.mode}): (a) ${spread.watchers} watchers over ${spread.contexts} contexts at ${spread.commitsPerSecond} commits/s; ` +
      `(b) ${hot.watchers} watchers on one context at ${hot.commitsPerSecond} commits/s; ` +
      `${settings.warmupMs / 1000} s warm-up + ${settings.measureMs / 1000} s measured each; ${settings.watchWorkers} watch workers + 1 writer`,
  );
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error);
    void cleanup.runAll().finally(() => process.exit(1));
  },
);
