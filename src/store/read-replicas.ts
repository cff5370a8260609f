/**
 * Read replicas (DATABASE_READ_URL): which one serves the next read that may be slightly stale
 * (StoreCall.replicaOk), and what happens when one is down or behind.
 *
 * - Round-robin over the replicas in rotation. A replica is in rotation once a probe has found it
 *   answering and no further behind the primary than `maxLagMs`; until its first probe it is not.
 * - Every `probeIntervalMs` a probe round samples the primary's WAL position, then asks each replica
 *   (on connections of their own, so a busy pool is still measured and a read never waits for a
 *   probe) how far it has replayed. See `lagOf` for how that becomes a lag in milliseconds.
 * - A read the replica fails with a connection-class error (STORAGE_ERROR: refused, reset, shut
 *   down…) is retried once on the primary, the caller never sees it, and the replica leaves the
 *   rotation until a probe finds it well again. A read a hot standby cancels because it conflicts
 *   with replay (40001) is retried on the primary too, but says nothing about the replica's health.
 *   Any other error (a deadline, a bad query) is the caller's, as it would be on the primary.
 * - One warning when a replica leaves the rotation, one info line when it is back: not a line per
 *   failed read or probe.
 *
 * A replica may serve reads up to `maxLagMs` plus one probe interval behind the primary.
 */
import type postgres from "postgres";
import type { Logger } from "../logger.js";
import { toStoreError } from "./sql-errors.js";

/** What a replica says of itself in a probe. */
export interface ReplicaProbe {
  /** False for a server that is not a standby (a primary): it is as fresh as itself, lag 0. */
  readonly inRecovery: boolean;
  /** How far it has replayed the WAL; null when it cannot say. */
  readonly replayLsn: bigint | null;
  /** Its clock minus the commit time of the last transaction it replayed, in ms; null before it replayed one. */
  readonly replayAgeMs: number | null;
}

/** "16/B374D848" → the 64-bit position. */
export function parseLsn(text: string): bigint {
  const [high, low] = text.split("/");
  if (high === undefined || low === undefined || !/^[0-9A-F]+$/i.test(high) || !/^[0-9A-F]+$/i.test(low)) {
    throw new Error(`not a WAL position: ${text}`);
  }
  return (BigInt(`0x${high}`) << 32n) + BigInt(`0x${low}`);
}

/** Where the primary has flushed its WAL to (what a replica can have received at most), on `client`, a connection used for nothing else. */
export function primaryPosition(client: postgres.Sql): ReadReplicaOptions["primary"] {
  return {
    position: async () => {
      const rows = await client.unsafe<Array<{ lsn: string }>>("select pg_current_wal_flush_lsn()::text as lsn");
      const lsn = rows[0]?.lsn;
      if (lsn === undefined) throw new Error("pg_current_wal_flush_lsn() returned no row");
      return parseLsn(lsn);
    },
    close: () => client.end({ timeout: 1 }),
  };
}

/** A replica's probe on `client` (a connection used for nothing else). */
export function replicaProbe(client: postgres.Sql): () => Promise<ReplicaProbe> {
  return async () => {
    const rows = await client.unsafe<Array<{ in_recovery: boolean; replay_lsn: string | null; replay_age_ms: string | number | null }>>(
      `select pg_is_in_recovery() as in_recovery,
              pg_last_wal_replay_lsn()::text as replay_lsn,
              extract(epoch from clock_timestamp() - pg_last_xact_replay_timestamp()) * 1000 as replay_age_ms`,
    );
    const row = rows[0];
    if (row === undefined) throw new Error("the replica probe returned no row");
    return {
      inRecovery: row.in_recovery,
      replayLsn: row.replay_lsn === null ? null : parseLsn(row.replay_lsn),
      replayAgeMs: row.replay_age_ms === null ? null : Number(row.replay_age_ms),
    };
  };
}

/** The primary was at `lsn` (or further) at `at` (epoch ms, taken before asking). */
interface PrimarySample {
  readonly at: number;
  readonly lsn: bigint;
}

/**
 * How stale a replica may be, in ms, `now`: an upper bound, the smaller of two.
 *
 * - From the primary's samples: a replica that has replayed up to the position the primary had at
 *   time t holds everything committed by t, so it is at most now − t behind (t: the newest sample
 *   at or before its replay position). This is what makes an idle primary right: nothing moves, the
 *   replica has replayed the latest sample, lag ≈ 0 — however old its last replayed commit. It also
 *   sees a backlog the replica has not even received yet (after an outage), which the replica's
 *   own "received = replayed" cannot.
 * - From the replica's replay age: it holds every commit up to its last replayed one's time, so it
 *   is at most that old. Under steady writes this is tight where samples are a probe interval apart.
 *
 * null: neither is known (nothing replayed, no sample at or before it): not in rotation.
 */
export function lagOf(probe: ReplicaProbe, samples: readonly PrimarySample[], now: number): number | null {
  if (!probe.inRecovery) return 0;
  let lag = probe.replayAgeMs === null ? null : Math.max(0, probe.replayAgeMs);
  if (probe.replayLsn !== null) {
    for (let i = samples.length - 1; i >= 0; i--) {
      const sample = samples[i];
      if (sample !== undefined && sample.lsn <= probe.replayLsn) {
        const bound = Math.max(0, now - sample.at);
        lag = lag === null ? bound : Math.min(lag, bound);
        break;
      }
    }
  }
  return lag;
}

/** One replica, as the selector sees it. */
export interface ReplicaTarget<H> {
  /** host:port/database, for the log: never credentials. */
  readonly name: string;
  /** What reads run on (a drizzle database). */
  readonly handle: H;
  /** Where the replica stands; throws when it does not answer. */
  probe(): Promise<ReplicaProbe>;
  /** Closes the replica's connections. */
  close(): Promise<void>;
}

export interface ReadReplicaOptions {
  /** The primary's flushed WAL position, the yardstick of every replica's lag (throws when it does not answer), and how to close its connection. */
  readonly primary: { position(): Promise<bigint>; close(): Promise<void> };
  /** A replica further behind than this leaves the rotation. */
  readonly maxLagMs: number;
  /** How often the replicas are probed. */
  readonly probeIntervalMs: number;
  /** A probe taking longer than this counts as the replica being down. */
  readonly probeTimeoutMs: number;
  readonly logger: Logger;
}

/** Where a replica stands: in rotation only when "healthy". */
export type ReplicaState = "unknown" | "healthy" | "lagging" | "down";

export interface ReplicaStatus {
  readonly name: string;
  readonly state: ReplicaState;
  /** The lag the last successful probe measured (ms); null before one, or when it could not be told. */
  readonly lagMs: number | null;
}

/** Reads that were allowed a replica (replicaOk), by where they ended up. For the metrics. */
export interface ReadReplicaCounters {
  /** Served by a replica. */
  readonly replica: number;
  /** Served by the primary instead: no replica in rotation, or the replica failed the read. */
  readonly primaryFallback: number;
  /** Of primaryFallback, those first tried on a replica that failed them. */
  readonly retriedOnPrimary: number;
}

interface Replica<H> {
  readonly target: ReplicaTarget<H>;
  state: ReplicaState;
  lagMs: number | null;
  /** A probe still running (it may have outlived its timeout): no second one is started meanwhile. */
  probing: Promise<ReplicaProbe> | undefined;
}

/** What a failed replica read means: mark the replica down and retry, only retry, or rethrow. */
function replicaFailure(error: unknown): "down" | "retry" | undefined {
  const reason = toStoreError(error).reason;
  if (reason === "STORAGE_ERROR") return "down";
  // A hot standby cancels reads that conflict with replay (40001); the primary has no such conflict.
  if (reason === "SERVICE_UNAVAILABLE") return "retry";
  return undefined;
}

/**
 * The innermost error's message (the driver's "connect ECONNREFUSED …"), with its code: the outer
 * ones are our AppError and drizzle's wrapper, whose message holds the SQL and its parameters.
 */
function messageOf(error: unknown): string {
  let innermost = error;
  for (let depth = 0; depth < 8 && innermost instanceof Error && innermost.cause !== undefined; depth++) innermost = innermost.cause;
  if (!(innermost instanceof Error)) return String(innermost);
  const code = (innermost as { code?: unknown }).code;
  return typeof code === "string" && !innermost.message.includes(code) ? `${innermost.message} (${code})` : innermost.message;
}

/** Resolves or rejects as `promise`, or rejects once `ms` have passed. */
async function within<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The replica selector: round-robin over the replicas in rotation, with background lag probes. */
export class ReadReplicas<H> {
  private readonly replicas: Array<Replica<H>>;
  /** The primary's recent WAL positions, oldest first: enough to measure lags up to well past maxLagMs. */
  private samples: PrimarySample[] = [];
  private sampling: Promise<bigint> | undefined;
  private next = 0;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private served = { replica: 0, primaryFallback: 0, retriedOnPrimary: 0 };

  constructor(
    targets: ReadonlyArray<ReplicaTarget<H>>,
    private readonly options: ReadReplicaOptions,
  ) {
    this.replicas = targets.map((target) => ({ target, state: "unknown", lagMs: null, probing: undefined }));
  }

  /** Probes every replica once (awaited, so the first reads already find them) and then keeps probing in the background. */
  async start(): Promise<void> {
    await this.probeAll();
    this.schedule();
  }

  /** One probe round, now: the primary's position, then every replica. */
  async probeAll(): Promise<void> {
    await this.samplePrimary();
    await Promise.all(this.replicas.map((r) => this.probe(r)));
  }

  /**
   * Runs a read a replica may serve: on the next replica in rotation, or on the primary when none
   * is (or when the replica fails it with a connection-class error or a replay conflict: once, on
   * the primary, with no error to the caller). Any other error is rethrown as it is.
   */
  async read<T>(onReplica: (handle: H) => Promise<T>, onPrimary: () => Promise<T>): Promise<T> {
    const replica = this.pick();
    if (replica === undefined) {
      this.served.primaryFallback++;
      return onPrimary();
    }
    try {
      const result = await onReplica(replica.target.handle);
      this.served.replica++;
      return result;
    } catch (error) {
      const failure = replicaFailure(error);
      if (failure === undefined) throw error;
      if (failure === "down") this.leave(replica, "down", { error: messageOf(error) });
      this.served.primaryFallback++;
      this.served.retriedOnPrimary++;
      return onPrimary();
    }
  }

  /** How many replicaOk reads went where, since start. */
  counters(): ReadReplicaCounters {
    return { ...this.served };
  }

  /** Each replica's state and last measured lag. */
  status(): ReplicaStatus[] {
    return this.replicas.map((r) => ({ name: r.target.name, state: r.state, lagMs: r.lagMs }));
  }

  /** Stops probing and closes every replica's connections. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    await Promise.all([...this.replicas.map((r) => r.target.close()), this.options.primary.close()].map((closing) => closing.catch(() => {})));
  }

  private pick(): Replica<H> | undefined {
    const n = this.replicas.length;
    for (let i = 0; i < n; i++) {
      const index = (this.next + i) % n;
      const replica = this.replicas[index];
      if (replica?.state === "healthy") {
        this.next = (index + 1) % n;
        return replica;
      }
    }
    return undefined;
  }

  private schedule(): void {
    if (this.closed) return;
    this.timer = setTimeout(() => {
      void this.probeAll().finally(() => this.schedule());
    }, this.options.probeIntervalMs);
    // Probing alone never keeps the process alive.
    this.timer.unref();
  }

  /**
   * Adds a sample of the primary's position. Its time is taken before asking, so a sample never
   * claims more than the primary had then. A primary that does not answer adds none: the lags then
   * grow from the last sample, as they should, since nothing is known of what it wrote since.
   */
  private async samplePrimary(): Promise<void> {
    // One at a time, as for the replicas: a hung primary connection gets no queue of samples.
    if (this.sampling !== undefined) return;
    const at = Date.now();
    const sampling = this.options.primary.position();
    this.sampling = sampling;
    const settle = () => {
      if (this.sampling === sampling) this.sampling = undefined;
    };
    sampling.then(settle, settle);
    try {
      const lsn = await within(sampling, this.options.probeTimeoutMs);
      this.samples.push({ at, lsn });
    } catch {
      return;
    }
    // Keep what measures lags up to a few times maxLagMs: beyond that a replica is out either way.
    const horizon = at - (2 * this.options.maxLagMs + 10 * this.options.probeIntervalMs);
    const keepFrom = this.samples.findIndex((sample) => sample.at >= horizon);
    // Always keep the newest sample older than the horizon too: it bounds replicas just behind it.
    if (keepFrom > 1) this.samples = this.samples.slice(keepFrom - 1);
  }

  private async probe(replica: Replica<H>): Promise<void> {
    // A probe that outlived its timeout (a black-holed host) already took the replica out: queue
    // no more behind it on its one connection.
    if (replica.probing !== undefined) return;
    const probing = replica.target.probe();
    replica.probing = probing;
    const settle = () => {
      if (replica.probing === probing) replica.probing = undefined;
    };
    probing.then(settle, settle);
    let answer: ReplicaProbe;
    try {
      answer = await within(probing, this.options.probeTimeoutMs);
    } catch (error) {
      if (!this.closed) this.leave(replica, "down", { error: messageOf(error) });
      return;
    }
    if (this.closed) return;
    const lag = lagOf(answer, this.samples, Date.now());
    replica.lagMs = lag;
    if (lag === null || lag > this.options.maxLagMs) {
      this.leave(replica, "lagging", { lagMs: lag === null ? "unknown" : Math.round(lag), maxLagMs: this.options.maxLagMs });
    } else {
      this.enter(replica, lag);
    }
  }

  /** Out of rotation: a warning when it leaves, an info line when only the reason changes. */
  private leave(replica: Replica<H>, state: "down" | "lagging", details: Record<string, unknown>): void {
    const was = replica.state;
    if (was === state) return;
    replica.state = state;
    const fields = { replica: replica.target.name, ...details };
    const what = state === "down" ? "does not answer" : "lags behind the primary";
    if (was === "healthy" || was === "unknown") {
      this.options.logger.warn(fields, `read replica ${replica.target.name} ${what}: its reads go to the primary until it is back`);
    } else {
      this.options.logger.info(fields, `read replica ${replica.target.name}, still out of rotation, now ${what}`);
    }
  }

  private enter(replica: Replica<H>, lag: number): void {
    const was = replica.state;
    if (was === "healthy") return;
    replica.state = "healthy";
    const fields = { replica: replica.target.name, lagMs: Math.round(lag) };
    // At start-up the "read replicas open" line says it; later, coming back ends an outage.
    if (was === "unknown") this.options.logger.debug(fields, `read replica ${replica.target.name} in rotation`);
    else this.options.logger.info(fields, `read replica ${replica.target.name} is back in rotation`);
  }
}
