/**
 * The sizes of a run: full (issue 4's figures), `--quick` (small, well under two minutes, to show
 * the benchmark works), and overrides for a machine that cannot hold the full size.
 */
import { parseArgs } from "node:util";
import type { WatchRpc } from "./protocol.js";

/** Scenario (a): many watchers spread over many contexts. */
export interface SpreadSettings {
  readonly watchers: number;
  readonly contexts: number;
  readonly commitsPerSecond: number;
}

/** Scenario (b): many watchers on one context, ours beside the bare grpc-js baseline. */
export interface HotSettings {
  readonly watchers: number;
  readonly commitsPerSecond: number;
}

export interface FanoutSettings {
  readonly mode: "full" | "quick";
  /** How our server's watchers watch: a WatchContext stream each, or Watch streams holding many (etcd's shape). */
  readonly rpc: WatchRpc;
  /** Run etcd's side of the scenarios too (when an etcd binary is on the PATH). */
  readonly etcd: boolean;
  readonly spread: SpreadSettings;
  readonly hot: HotSettings;
  /** Replay: revisions a new watch catches up on (scenario c). */
  readonly replayRevisions: number;
  /** Load before the measured window (connections warm, JIT done, hub feeds created). */
  readonly warmupMs: number;
  /** The measured window: deliveries whose commit was stamped inside it count. */
  readonly measureMs: number;
  /** After the last commit, how long deliveries may still arrive before results are collected. */
  readonly drainMs: number;
  /** With every watcher open and idle, how long to wait before reading the servers' RSS. */
  readonly idleSettleMs: number;
  /** Worker threads holding watch streams (the writer has a thread of its own). */
  readonly watchWorkers: number;
  /** Most streams per channel (HTTP/2 connection), as a client library would spread them. */
  readonly streamsPerChannel: number;
  /** Streams being opened at once per worker. */
  readonly openConcurrency: number;
  /** Channels the writer spreads its commits over. */
  readonly writerChannels: number;
  /** Commits in flight beyond which the writer skips (and counts) a scheduled one. */
  readonly maxInFlight: number;
  /** The whole run is cut off (and cleaned up) after this long, whatever happens. */
  readonly deadlineMs: number;
  /** Admin URL of the Postgres server the throwaway databases are created on. */
  readonly databaseUrl: string;
  readonly redisUrl: string;
}

const FULL = {
  spread: { watchers: 10_000, contexts: 1_000, commitsPerSecond: 100 },
  // Issue 16's rate: 20 commits/s = 20,000 deliveries/s (the full run used 10/s while a Watch
  // stream's messages went to the socket one write round each and this saturated our server).
  hot: { watchers: 1_000, commitsPerSecond: 20 },
  replayRevisions: 10_000,
  warmupMs: 5_000,
  measureMs: 30_000,
  drainMs: 3_000,
  idleSettleMs: 3_000,
  watchWorkers: 2,
  deadlineMs: 15 * 60_000,
} as const;

const QUICK = {
  spread: { watchers: 500, contexts: 50, commitsPerSecond: 50 },
  hot: { watchers: 100, commitsPerSecond: 20 },
  replayRevisions: 500,
  warmupMs: 2_000,
  measureMs: 5_000,
  drainMs: 1_500,
  idleSettleMs: 1_500,
  watchWorkers: 2,
  deadlineMs: 3 * 60_000,
} as const;

export const USAGE = `npm run bench:fanout [-- options]

  --quick            small sizes (${QUICK.spread.watchers} watchers / ${QUICK.spread.contexts} contexts / ${QUICK.spread.commitsPerSecond} commits/s for ${QUICK.measureMs / 1000} s; ${QUICK.hot.watchers} for (b))
  --watchers N       (a) watch streams            (full: ${FULL.spread.watchers})
  --contexts N       (a) contexts they spread over (full: ${FULL.spread.contexts})
  --rate N           (a) commits per second        (full: ${FULL.spread.commitsPerSecond})
  --hot-watchers N   (b) streams on the one context (full: ${FULL.hot.watchers})
  --hot-rate N       (b) commits per second         (full: ${FULL.hot.commitsPerSecond})
  --seconds N        measured window per scenario  (full: ${FULL.measureMs / 1000})
  --workers N        watch worker threads          (default: ${FULL.watchWorkers})
  --only a|b|c       run one scenario only (c: a watch replaying ${FULL.replayRevisions} revisions; quick ${QUICK.replayRevisions})
  --no-etcd          skip etcd (run beside ours by default when an etcd binary is on the PATH,
                     before ours and, full size, again after; ETCD_BIN names another binary)
  --rpc watch|watch-context
                     our watchers as watches on ~10 Watch streams (default, etcd's shape) or a
                     WatchContext stream each (≤ 500 per connection)

  BENCH_DATABASE_URL  Postgres admin URL (default TEST_DATABASE_URL or postgres://postgres@127.0.0.1:5432/postgres)
  BENCH_REDIS_URL     Redis URL (default TEST_REDIS_URL or redis://127.0.0.1:6379)`;

function positive(name: string, raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name} must be a positive number, got "${raw}"`);
  return value;
}

/** Which scenarios to run. */
export type Only = "a" | "b" | "c" | undefined;

/** Reads the command line (and environment) into settings; throws with the usage on a bad option. */
export function readSettings(argv: readonly string[], env: NodeJS.ProcessEnv): { settings: FanoutSettings; only: Only; help: boolean } {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      quick: { type: "boolean", default: false },
      watchers: { type: "string" },
      contexts: { type: "string" },
      rate: { type: "string" },
      "hot-watchers": { type: "string" },
      "hot-rate": { type: "string" },
      seconds: { type: "string" },
      workers: { type: "string" },
      only: { type: "string" },
      rpc: { type: "string", default: "watch" },
      "no-etcd": { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
  });
  const base = values.quick ? QUICK : FULL;
  if (values.only !== undefined && values.only !== "a" && values.only !== "b" && values.only !== "c") throw new Error(`--only must be a, b or c, got "${values.only}"`);
  if (values.rpc !== "watch" && values.rpc !== "watch-context") throw new Error(`--rpc must be watch or watch-context, got "${values.rpc}"`);
  const seconds = positive("seconds", values.seconds);
  const settings: FanoutSettings = {
    mode: values.quick ? "quick" : "full",
    rpc: values.rpc,
    etcd: !values["no-etcd"],
    spread: {
      watchers: Math.round(positive("watchers", values.watchers) ?? base.spread.watchers),
      contexts: Math.round(positive("contexts", values.contexts) ?? base.spread.contexts),
      commitsPerSecond: positive("rate", values.rate) ?? base.spread.commitsPerSecond,
    },
    hot: {
      watchers: Math.round(positive("hot-watchers", values["hot-watchers"]) ?? base.hot.watchers),
      commitsPerSecond: positive("hot-rate", values["hot-rate"]) ?? base.hot.commitsPerSecond,
    },
    replayRevisions: base.replayRevisions,
    warmupMs: base.warmupMs,
    measureMs: seconds === undefined ? base.measureMs : seconds * 1000,
    drainMs: base.drainMs,
    idleSettleMs: base.idleSettleMs,
    watchWorkers: Math.round(positive("workers", values.workers) ?? base.watchWorkers),
    streamsPerChannel: 500,
    openConcurrency: 64,
    writerChannels: 2,
    maxInFlight: 1_000,
    deadlineMs: base.deadlineMs + (seconds === undefined ? 0 : 4 * seconds * 1000),
    databaseUrl: env["BENCH_DATABASE_URL"] ?? env["TEST_DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/postgres",
    redisUrl: env["BENCH_REDIS_URL"] ?? env["TEST_REDIS_URL"] ?? "redis://127.0.0.1:6379",
  };
  return { settings, only: values.only as Only, help: values.help };
}
