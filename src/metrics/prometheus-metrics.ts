/**
 * The Prometheus side of the metrics ports: the transport's CallMetrics and WatchMetrics and the
 * services' ServiceMetrics, implemented on prom-client. It matches those interfaces by shape and
 * imports neither layer, so the dependency direction stays transport/service → (nothing) and only
 * the composition root knows both.
 *
 * One Registry per app, not prom-client's global one: the tests start many apps in one process,
 * and a second registration of a metric name in the global registry throws.
 *
 * Pool use is approximated by the store's own count of running reads and transactions
 * (postgres.js exposes no pool statistics); the event backlog comes from the watch hub's queues.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import { CountingHistogram } from "./counting-histogram.js";

type Labels = Record<string, string>;

/** Every metric name starts with this, so a shared Prometheus can tell this service's series apart. */
export const METRIC_PREFIX = "mplp_context_";

/** Call latency buckets (seconds): a unary call lands in the low ones; a watch stream's lifetime in the top ones. */
const CALL_SECONDS_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60, 600];
/** Fan-out lag buckets (seconds): the seed's state-sync target is P95 < 200 ms, so the resolution sits around it. */
const LAG_SECONDS_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2.5, 5, 10, 30];

/** The metrics of one app, and the registry /metrics serves. */
export class PrometheusMetrics {
  readonly registry = new Registry();
  private readonly calls: Counter<"method" | "code">;
  private readonly callSeconds: Histogram<"method">;
  private readonly inFlight: Gauge<"method">;
  private readonly watches: Gauge;
  private readonly fanOutLag: CountingHistogram;
  private readonly sweeps: Counter;
  private readonly swept: Counter<"kind">;

  constructor() {
    const registers = [this.registry];
    // Process CPU, memory, event-loop lag, GC: what the HPA's CPU/memory targets are judged against.
    collectDefaultMetrics({ register: this.registry, prefix: METRIC_PREFIX });
    this.calls = new Counter({
      name: `${METRIC_PREFIX}grpc_calls_total`,
      help: "gRPC calls finished, by full method path and status code",
      labelNames: ["method", "code"] as const,
      registers,
    });
    this.callSeconds = new Histogram({
      name: `${METRIC_PREFIX}grpc_call_duration_seconds`,
      help: "gRPC call duration from arrival to status, by method (streams: their whole lifetime)",
      labelNames: ["method"] as const,
      buckets: CALL_SECONDS_BUCKETS,
      registers,
    });
    this.inFlight = new Gauge({
      name: `${METRIC_PREFIX}grpc_calls_in_flight`,
      help: "gRPC calls being served now, by method (open watch and keep-alive streams included)",
      labelNames: ["method"] as const,
      registers,
    });
    this.watches = new Gauge({ name: `${METRIC_PREFIX}watch_streams_open`, help: "Watches open on this instance: WatchContext streams and the watches of Watch streams", registers });
    // Observed once per delivery on every stream: the cheap histogram (see counting-histogram.ts).
    this.fanOutLag = new CountingHistogram(
      `${METRIC_PREFIX}watch_fanout_lag_seconds`,
      "From a revision's commit (its events' occurred_at) to its write on a watch stream; replays of old revisions count their age",
      LAG_SECONDS_BUCKETS,
      this.registry,
    );
    this.sweeps = new Counter({ name: `${METRIC_PREFIX}presence_sweeps_total`, help: "Expiry sweep passes completed by this instance", registers });
    this.swept = new Counter({
      name: `${METRIC_PREFIX}presence_swept_total`,
      help: "What the expiry sweeps changed, by kind (lapsed, removed, terminated, deleted, compacted, purged)",
      labelNames: ["kind"] as const,
      registers,
    });
  }

  callStarted(method: string): void {
    this.inFlight.inc({ method });
  }

  callFinished(method: string, code: string, seconds: number): void {
    this.inFlight.dec({ method });
    this.calls.inc({ method, code });
    this.callSeconds.observe({ method }, seconds);
  }

  watchOpened(): void {
    this.watches.inc();
  }

  watchClosed(): void {
    this.watches.dec();
  }

  revisionSent(lagSeconds: number): void {
    this.fanOutLag.observe(lagSeconds);
  }

  sweepPassed(counts: Readonly<Record<string, number>>): void {
    this.sweeps.inc();
    for (const [kind, n] of Object.entries(counts)) if (n > 0) this.swept.inc({ kind }, n);
  }

  /**
   * Exports the read cache's counters (read at scrape time, so the cache keeps plain numbers):
   * hits by level, misses, coalesced loads, L1 evictions (bounds) and invalidations (writes).
   */
  observeCache(counters: () => Readonly<Record<"l1Hits" | "l2Hits" | "misses" | "coalesced" | "evictions" | "invalidations", number>>): void {
    this.scrapedCounter("cache_hits_total", "Read-cache hits, by level (l1 in-process, l2 Redis)", ["level"], () => {
      const c = counters();
      return [
        [{ level: "l1" }, c.l1Hits],
        [{ level: "l2" }, c.l2Hits],
      ];
    });
    const single: Array<[string, string, "misses" | "coalesced" | "evictions" | "invalidations"]> = [
      ["cache_misses_total", "Read-cache misses (loaded from the database)", "misses"],
      ["cache_coalesced_total", "Reads that waited for a concurrent load of the same key instead of loading it again", "coalesced"],
      ["cache_evictions_total", "In-process cache entries dropped to stay within CACHE_L1_MAX_ENTRIES / CACHE_L1_MAX_BYTES", "evictions"],
      ["cache_invalidations_total", "In-process cache entries dropped because a write made them stale", "invalidations"],
    ];
    for (const [name, help, field] of single) this.scrapedCounter(name, help, [], () => [[{}, counters()[field]]]);
  }

  /**
   * Exports the read replicas' figures (read at scrape time): reads by where they were served, and
   * each replica's rotation state (1 = in) and last measured lag.
   */
  observeReplicas(
    counters: () => Readonly<{ replica: number; primaryFallback: number; retriedOnPrimary: number }>,
    status: () => ReadonlyArray<{ readonly name: string; readonly state: string; readonly lagMs: number | null }>,
  ): void {
    this.scrapedCounter(
      "replica_reads_total",
      "Reads a read replica may serve, by where they ran: replica, or primary (none in rotation, or the replica failed the read: retried)",
      ["served_by"],
      () => {
        const c = counters();
        return [
          [{ served_by: "replica" }, c.replica],
          [{ served_by: "primary" }, c.primaryFallback - c.retriedOnPrimary],
          [{ served_by: "primary_retry" }, c.retriedOnPrimary],
        ];
      },
    );
    this.scrapedGauge("read_replica_in_rotation", "1 while a read replica takes reads, 0 while it is down, lagging or unknown", ["replica", "state"], () =>
      status().map((r) => [{ replica: r.name, state: r.state }, r.state === "healthy" ? 1 : 0]),
    );
    this.scrapedGauge("read_replica_lag_seconds", "Each read replica's lag behind the primary at its last probe", ["replica"], () =>
      status().flatMap((r) => (r.lagMs === null ? [] : [[{ replica: r.name }, r.lagMs / 1000] as const])),
    );
  }

  /**
   * Exports, read at scrape time: database operations in flight against the pool's size (pool use),
   * and the watch hub's event backlog.
   */
  observeWork(poolMax: number, operationsInFlight: () => number, backlog: () => number, queue: { readonly waiting: number; readonly rejected: number }): void {
    this.scrapedGauge(
      "database_operations_in_flight",
      "Reads and transactions of the service running now, each holding or waiting for a pooled connection (compare database_pool_max)",
      [],
      () => [[{}, operationsInFlight()]],
    );
    new Gauge({ name: `${METRIC_PREFIX}database_pool_max`, help: "Most connections this instance opens to the primary (DATABASE_POOL_MAX; 1 on PGlite)", registers: [this.registry] }).set(poolMax);
    this.scrapedGauge(
      "database_queue_waiting",
      "Reads and transactions waiting for their turn at the primary (first come, first served; at most DATABASE_POOL_MAX run at once)",
      [],
      () => [[{}, queue.waiting]],
    );
    this.scrapedCounter(
      "database_queue_rejected_total",
      "Calls turned away with UNAVAILABLE after waiting DATABASE_QUEUE_TIMEOUT_MS for the primary: the instance is overloaded",
      [],
      () => [[{}, queue.rejected]],
    );
    this.scrapedGauge(
      "watch_backlog_revisions",
      "Revisions waiting on this instance: announced but not yet read by their context's feed, plus queued unsent on each watch stream",
      [],
      () => [[{}, backlog()]],
    );
  }

  /**
   * Exports, read at scrape time, what the service sent to the primary: statements, round trips
   * (a lone statement, or one batch of a transaction) and transactions — per call, the bench report's
   * table (bench/ops/call-costs.ts).
   */
  observeDatabase(counters: () => { readonly statements: number; readonly roundTrips: number; readonly transactions: number }): void {
    this.scrapedCounter("database_statements_total", "Statements sent to the primary (BEGIN and COMMIT included)", [], () => [[{}, counters().statements]]);
    this.scrapedCounter("database_round_trips_total", "Times a call waited for the primary: one per lone statement, one per batch of a transaction", [], () => [[{}, counters().roundTrips]]);
    this.scrapedCounter("database_transactions_total", "Transactions begun on the primary", [], () => [[{}, counters().transactions]]);
  }

  /** A counter whose values are read from `read` at each scrape (the source keeps plain running totals). */
  private scrapedCounter(name: string, help: string, labelNames: readonly string[], read: () => ReadonlyArray<readonly [Labels, number]>): void {
    new Counter({
      name: `${METRIC_PREFIX}${name}`,
      help,
      labelNames,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const [labels, value] of read()) this.inc(labels, value);
      },
    });
  }

  /** A gauge whose values are read from `read` at each scrape; series absent from the reading disappear. */
  private scrapedGauge(name: string, help: string, labelNames: readonly string[], read: () => ReadonlyArray<readonly [Labels, number]>): void {
    new Gauge({
      name: `${METRIC_PREFIX}${name}`,
      help,
      labelNames,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const [labels, value] of read()) this.set(labels, value);
      },
    });
  }

  /** The exposition text and its content type, for /metrics. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
