/**
 * Sizes of a driver run: full, and `--quick` (everything small, well under two minutes, for CI to
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
  readonly databaseUrl: string;
  readonly redisUrl: string;
  readonly deadlineMs: number;
}

export const USAGE = `npm run bench [-- options]

  --quick        everything small (< 2 min): 25% of the seed's rates, 1.5 s windows
  --embedded     our server on embedded PGlite (in memory) instead of Postgres + Redis
  --only a,b     only these operations (names of bench/ghz/*.json); skips the scale scenarios
  --seconds N    measured window per scenario and mode (full: 10)

  BENCH_DATABASE_URL  Postgres admin URL (default TEST_DATABASE_URL or postgres://postgres@127.0.0.1:5432/postgres)
  BENCH_REDIS_URL     Redis URL (default TEST_REDIS_URL or redis://127.0.0.1:6379)`;

export function readSettings(argv: readonly string[], env: NodeJS.ProcessEnv): { settings: DriverSettings; help: boolean } {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      quick: { type: "boolean", default: false },
      embedded: { type: "boolean", default: false },
      only: { type: "string" },
      seconds: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
  });
  const quick = values.quick;
  const seconds = values.seconds === undefined ? undefined : Number(values.seconds);
  if (seconds !== undefined && !(seconds > 0)) throw new Error(`--seconds must be a positive number, got "${values.seconds}"`);
  return {
    help: values.help,
    settings: {
      mode: quick ? "quick" : "full",
      embedded: values.embedded,
      rateScale: quick ? 0.25 : 1,
      warmupMs: quick ? 500 : 2_000,
      measureMs: seconds !== undefined ? seconds * 1000 : quick ? 1_500 : 10_000,
      workers: 2,
      channelsPerWorker: 2,
      concurrencyPerWorker: quick ? 8 : 32,
      closedSeedPerSecond: quick ? 800 : 2_500,
      poolContexts: quick ? 100 : 1_000,
      poolMembers: 10,
      only: values.only?.split(",").map((s) => s.trim()),
      scaleRate: quick ? 50 : 100,
      // 1,000,000 is the figure, but copying rows ran at ~700/s on this shared machine
      // (~25 min); 100,000 (10× the smaller count) fits a run. Raise it where there is time.
      smallContexts: quick ? 1_000 : 10_000,
      largeContexts: quick ? 3_000 : 100_000,
      databaseUrl: env["BENCH_DATABASE_URL"] ?? env["TEST_DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/postgres",
      redisUrl: env["BENCH_REDIS_URL"] ?? env["TEST_REDIS_URL"] ?? "redis://127.0.0.1:6379",
      deadlineMs: quick ? 4 * 60_000 : 30 * 60_000,
    },
  };
}
