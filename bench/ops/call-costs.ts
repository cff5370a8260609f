/**
 * What one call cost the server, over a measured window: its CPU (user + system of the process,
 * /proc), and — for our server — the statements, round trips and transactions it sent to Postgres
 * (its /metrics: database_*_total, and grpc_calls_total for the calls it finished), checked
 * against Postgres's own count of committed transactions (pg_stat_database.xact_commit, which also
 * counts a lone statement's implicit transaction). Issue 14's per-method table.
 */
import postgres from "postgres";
import { cpuSeconds } from "../fanout/processes.js";

/** Where the figures of one server come from. */
export interface CostProbe {
  readonly pid: number;
  /** Our server's /metrics (`host:port`); none for the echo server. */
  readonly metricsAddress?: string;
  /** The server's Postgres database, for xact_commit; none on PGlite. */
  readonly databaseUrl?: string;
}

interface Sample {
  readonly at: number;
  readonly cpuSeconds: number;
  readonly metrics: Readonly<Record<string, number>> | null;
  readonly xactCommit: number | null;
}

/** Per call over a window; the database figures are absent for the echo server (and xact on PGlite). */
export interface CallCosts {
  /** Calls the figures are divided by: the server's own count when it has metrics, else the driver's. */
  readonly calls: number;
  readonly cpuMsPerCall: number;
  readonly statements?: number;
  readonly roundTrips?: number;
  readonly transactions?: number;
  /** Postgres's committed transactions per call (lone statements included), background work too. */
  readonly xactCommits?: number;
}

const COUNTERS = {
  statements: "mplp_context_database_statements_total",
  roundTrips: "mplp_context_database_round_trips_total",
  transactions: "mplp_context_database_transactions_total",
  calls: "mplp_context_grpc_calls_total",
} as const;

/** Sums each counter over its series in a Prometheus exposition. */
function counters(text: string): Record<string, number> {
  const sums: Record<string, number> = {};
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    for (const [key, name] of Object.entries(COUNTERS)) {
      if (line.startsWith(`${name} `) || line.startsWith(`${name}{`)) sums[key] = (sums[key] ?? 0) + Number(line.slice(line.lastIndexOf(" ") + 1));
    }
  }
  return sums;
}

export class CostMeter {
  private readonly sql: postgres.Sql | undefined;

  constructor(private readonly probe: CostProbe) {
    this.sql = probe.databaseUrl === undefined ? undefined : postgres(probe.databaseUrl, { max: 1, onnotice: () => {} });
  }

  async sample(): Promise<Sample> {
    const [metrics, xactCommit] = await Promise.all([
      this.probe.metricsAddress === undefined
        ? Promise.resolve(null)
        : fetch(`http://${this.probe.metricsAddress}/metrics`).then(async (r) => counters(await r.text())),
      this.sql === undefined
        ? Promise.resolve(null)
        : this.sql`select xact_commit::float8 as n from pg_stat_database where datname = current_database()`.then((rows) => Number(rows[0]?.["n"])),
    ]);
    return { at: Date.now(), cpuSeconds: cpuSeconds(this.probe.pid), metrics, xactCommit };
  }

  /** Per call between two samples; `driverCalls` when the server counts none itself. */
  static between(a: Sample, b: Sample, driverCalls: number): CallCosts {
    const d = (key: keyof typeof COUNTERS): number | undefined =>
      a.metrics === null || b.metrics === null ? undefined : (b.metrics[key] ?? 0) - (a.metrics[key] ?? 0);
    const calls = d("calls") ?? driverCalls;
    const per = (n: number | undefined): number | undefined => (n === undefined || calls === 0 ? undefined : +(n / calls).toFixed(3));
    return {
      calls,
      cpuMsPerCall: calls === 0 ? 0 : +(((b.cpuSeconds - a.cpuSeconds) * 1000) / calls).toFixed(3),
      ...optional("statements", per(d("statements"))),
      ...optional("roundTrips", per(d("roundTrips"))),
      ...optional("transactions", per(d("transactions"))),
      ...optional("xactCommits", per(a.xactCommit === null || b.xactCommit === null ? undefined : b.xactCommit - a.xactCommit)),
    };
  }

  async close(): Promise<void> {
    await this.sql?.end({ timeout: 2 });
  }
}

function optional<K extends string>(key: K, value: number | undefined): Partial<Record<K, number>> {
  return value === undefined ? {} : ({ [key]: value } as Record<K, number>);
}

/** The middle of three (or the lower middle of an even count) by `by`. */
export function median<T>(items: readonly T[], by: (item: T) => number): T | undefined {
  const sorted = [...items].sort((x, y) => by(x) - by(y));
  return sorted[Math.floor((sorted.length - 1) / 2)];
}
