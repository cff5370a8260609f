/**
 * What one call cost the server, over a measured window: its CPU (user + system of the process,
 * /proc), and — for our server — the statements, round trips and transactions it sent to Postgres
 * (its /metrics: database_*_total, and grpc_calls_total for the calls it finished), checked
 * against Postgres's own count of committed transactions (pg_stat_database.xact_commit, which also
 * counts a lone statement's implicit transaction). Issue 14's per-method table.
 *
 * Also where the rest of the machine's CPU went over the window, per call: Postgres's processes
 * (backends, WAL writer, checkpointer, autovacuum) and Redis's when they run on this machine, the
 * load generator's own process (its worker threads included), and how busy all cores were. The
 * driver, the server and the database share two cores here: a closed loop's maximum is where
 * their sum fills the machine, and these columns say whose share is whose.
 */
import { readdirSync, readFileSync } from "node:fs";
import postgres from "postgres";
import { cpuSeconds, USER_HZ } from "../fanout/processes.js";

/** Where the figures of one server come from. */
export interface CostProbe {
  readonly pid: number;
  /** Our server's /metrics (`host:port`); none for the echo server. */
  readonly metricsAddress?: string;
  /** The server's Postgres database, for xact_commit; none on PGlite. */
  readonly databaseUrl?: string;
  /** Postgres and Redis run on this machine: sum their processes' CPU too. */
  readonly localServices?: boolean;
}

/** CPU seconds so far of this machine's processes named `postgres` and `redis-server` (/proc/<pid>/comm). */
export function servicesCpuSeconds(): { postgres: number; redis: number } {
  const sums = { postgres: 0, redis: 0 };
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const comm = readFileSync(`/proc/${entry}/comm`, "utf8").trim();
      if (comm === "postgres") sums.postgres += cpuSeconds(Number(entry));
      else if (comm === "redis-server") sums.redis += cpuSeconds(Number(entry));
    } catch {
      // The process ended between the listing and the read: its time is lost to both samples alike.
    }
  }
  return sums;
}

/** All cores' busy and total CPU seconds so far (/proc/stat; idle, iowait and steal are not busy). */
function machineSeconds(): { busy: number; total: number } {
  const fields = readFileSync("/proc/stat", "utf8").split("\n", 1)[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
  const [user, nice, system, idle, iowait, irq, softirq, steal] = fields as [number, number, number, number, number, number, number, number];
  const busy = user + nice + system + irq + softirq;
  return { busy: busy / USER_HZ, total: (busy + idle + iowait + steal) / USER_HZ };
}

interface Sample {
  readonly at: number;
  readonly cpuSeconds: number;
  readonly metrics: Readonly<Record<string, number>> | null;
  readonly xactCommit: number | null;
  readonly services: { postgres: number; redis: number } | null;
  /** This (driver) process's CPU seconds, its worker threads included. */
  readonly driverCpuSeconds: number;
  readonly machine: { busy: number; total: number };
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
  /** CPU per call of this machine's Postgres processes and Redis (when they are local). */
  readonly postgresCpuMsPerCall?: number;
  readonly redisCpuMsPerCall?: number;
  /** CPU per call of the load generator (the driver process and its worker threads). */
  readonly driverCpuMsPerCall?: number;
  /** All cores' busy time per call, and the share of the machine that was busy (0–1). */
  readonly machineCpuMsPerCall?: number;
  readonly machineBusy?: number;
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
    const usage = process.cpuUsage();
    return {
      at: Date.now(),
      cpuSeconds: cpuSeconds(this.probe.pid),
      metrics,
      xactCommit,
      services: this.probe.localServices === true ? servicesCpuSeconds() : null,
      driverCpuSeconds: (usage.user + usage.system) / 1e6,
      machine: machineSeconds(),
    };
  }

  /** Per call between two samples; `driverCalls` when the server counts none itself. */
  static between(a: Sample, b: Sample, driverCalls: number): CallCosts {
    const d = (key: keyof typeof COUNTERS): number | undefined =>
      a.metrics === null || b.metrics === null ? undefined : (b.metrics[key] ?? 0) - (a.metrics[key] ?? 0);
    const calls = d("calls") ?? driverCalls;
    const per = (n: number | undefined): number | undefined => (n === undefined || calls === 0 ? undefined : +(n / calls).toFixed(3));
    const machine = { busy: b.machine.busy - a.machine.busy, total: b.machine.total - a.machine.total };
    const services = a.services === null || b.services === null ? undefined : { postgres: b.services.postgres - a.services.postgres, redis: b.services.redis - a.services.redis };
    return {
      calls,
      cpuMsPerCall: calls === 0 ? 0 : +(((b.cpuSeconds - a.cpuSeconds) * 1000) / calls).toFixed(3),
      ...optional("statements", per(d("statements"))),
      ...optional("roundTrips", per(d("roundTrips"))),
      ...optional("transactions", per(d("transactions"))),
      ...optional("xactCommits", per(a.xactCommit === null || b.xactCommit === null ? undefined : b.xactCommit - a.xactCommit)),
      ...optional("postgresCpuMsPerCall", per(services === undefined ? undefined : services.postgres * 1000)),
      ...optional("redisCpuMsPerCall", per(services === undefined ? undefined : services.redis * 1000)),
      ...optional("driverCpuMsPerCall", per((b.driverCpuSeconds - a.driverCpuSeconds) * 1000)),
      ...optional("machineCpuMsPerCall", per(machine.busy * 1000)),
      ...optional("machineBusy", machine.total > 0 ? +(machine.busy / machine.total).toFixed(3) : undefined),
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
