/**
 * Sizes of a driver run: full, and `--quick` (everything small, about three minutes, for CI to
 * prove the benchmark works — it asserts no timing).
 */
import { parseArgs } from "node:util";

export interface DriverSettings {
  readonly mode: "full" | "quick";
  readonly embedded: boolean;
  /** Open-loop rate = the seed's throughput × this (quick runs at a fraction of it). */
  readonly rateScale: number;
  readonly warmupMs: number;
  readonly measureMs: number;
  /**
   * Windows per mode and measurement: each figure is their median (this machine's noise is ±40 %).
   * Quick runs one: it proves the driver works and must fit CI's few minutes.
   */
  readonly windows: number;
  readonly workers: number;
  readonly channelsPerWorker: number;
  /** Closed loop: requests in flight per worker. */
  readonly concurrencyPerWorker: number;
  /** Consumable ids seeded for the closed loop, per second of it (a guess above our max rate). */
  readonly closedSeedPerSecond: number;
  /** Contexts in the shared pool, each with `poolMembers` members. */
  readonly poolContexts: number;
  readonly poolMembers: number;
  readonly only: readonly string[] | undefined;
  /** Scale scenarios: their fixed open-loop rate, and the stored context counts compared. */
  readonly scaleRate: number;
  readonly smallContexts: number;
  readonly largeContexts: number;
  /** Memory: contexts made active (a KeepAlive participant and a watcher each), 0 = skip. */
  readonly activeContexts: number;
  /** Memory: how long the streams stay open and idle before the server's RSS is read. */
  readonly activeSettleMs: number;
  readonly databaseUrl: string;
  readonly redisUrl: string;
  readonly deadlineMs: number;
}

export const USAGE = `npm run bench [-- options]

  --quick        everything small (~3 min): 25% of the seed's rates, one 1.5 s window per mode
  --embedded     our server on embedded PGlite (in memory) instead of Postgres + Redis
  --only a,b     only these operations (names of bench/ghz/*.json) and parts (scale, memory, cache)
  --seconds N    measured window per scenario and mode (full: 10)
  --stored N     the larger stored-context count of the scale scenarios (full: 1000000, quick: 3000)
  --active N     active contexts for the memory figure, 0 to skip it (full: 10000, quick: 200)

  BENCH_DATABASE_URL  Postgres admin URL (default TEST_DATABASE_URL or postgres://postgres@127.0.0.1:5432/postgres)
  BENCH_REDIS_URL     Redis URL (default TEST_REDIS_URL or redis://127.0.0.1:6379)
  BENCH_SERVER_NODE_ARGS  extra Node flags for the servers (ours and the echo), e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"
  BENCH_SERVER_ENV        settings for the servers, space-separated NAME=value, e.g. "DATABASE_POOL_MAX=4"
  BENCH_SERVER_LOG_DIR    also write each server's whole output to <dir>/<label>-<pid>.log`;

export function readSettings(argv: readonly string[], env: NodeJS.ProcessEnv): { settings: DriverSettings; help: boolean } {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      quick: { type: "boolean", default: false },
      embedded: { type: "boolean", default: false },
      only: { type: "string" },
      seconds: { type: "string" },
      stored: { type: "string" },
      active: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
  });
  const quick = values.quick;
  const seconds = values.seconds === undefined ? undefined : Number(values.seconds);
  if (seconds !== undefined && !(seconds > 0)) throw new Error(`--seconds must be a positive number, got "${values.seconds}"`);
  const count = (name: string, raw: string | undefined, fallback: number, min: number): number => {
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!Number.isSafeInteger(n) || n < min) throw new Error(`--${name} must be an integer ≥ ${min}, got "${raw}"`);
    return n;
  };
  const smallContexts = quick ? 1_000 : 10_000;
  const activeContexts = count("active", values.active, quick ? 200 : 10_000, 0);
  return {
    help: values.help,
    settings: {
      mode: quick ? "quick" : "full",
      embedded: values.embedded,
      rateScale: quick ? 0.25 : 1,
      warmupMs: quick ? 500 : 2_000,
      measureMs: seconds !== undefined ? seconds * 1000 : quick ? 1_500 : 10_000,
      windows: quick ? 1 : 3,
      workers: 2,
      channelsPerWorker: 2,
      concurrencyPerWorker: quick ? 8 : 32,
      closedSeedPerSecond: quick ? 800 : 2_500,
      poolContexts: quick ? 100 : 1_000,
      poolMembers: 10,
      only: values.only?.split(",").map((s) => s.trim()),
      scaleRate: quick ? 50 : 100,
      // Issue 7's 10,000 vs 1,000,000; filling takes ~40 s on Postgres and on PGlite here.
      smallContexts,
      largeContexts: count("stored", values.stored, quick ? 3_000 : 1_000_000, smallContexts),
      activeContexts,
      activeSettleMs: quick ? 300 : 5_000,
      databaseUrl: env["BENCH_DATABASE_URL"] ?? env["TEST_DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/postgres",
      redisUrl: env["BENCH_REDIS_URL"] ?? env["TEST_REDIS_URL"] ?? "redis://127.0.0.1:6379",
      // Seeding and opening active contexts runs at a few hundred per second here: 30 ms each on top.
      deadlineMs: (quick ? 4 * 60_000 : 45 * 60_000) + activeContexts * 30,
    },
  };
}
