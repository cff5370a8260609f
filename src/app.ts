/**
 * The composition root: config → database → stores → services (and the expiry sweeper) → gRPC server. main.ts runs it as
 * a process; the end-to-end tests run it in-process on port 0.
 */
import type { Config } from "./config.js";
import type { Logger } from "./logger.js";
import { ContextService } from "./service/context-service.js";
import { ParticipantService } from "./service/participant-service.js";
import { SharedStateService } from "./service/shared-state-service.js";
import { systemClock, type Doorbell } from "./service/ports.js";
import { Sweeper } from "./service/sweeper.js";
import { Writes } from "./service/writes.js";
import { startMetricsServer, type MetricsServer } from "./metrics/metrics-server.js";
import { PrometheusMetrics } from "./metrics/prometheus-metrics.js";
import { startTracing } from "./tracing/tracing.js";
import { WatchHub } from "./service/watch-hub.js";
import { readPath } from "./read-path.js";
import { eventsFromWire } from "./store/committed-events.js";
import { PgContextStore } from "./store/context-store.js";
import { openDatabase, type Database } from "./store/database.js";
import { LocalDoorbell } from "./store/local-doorbell.js";
import { RedisDoorbell } from "./store/redis-doorbell.js";
import { WorkQueue } from "./store/work-queue.js";
import { contextHandlers } from "./transport/context-handlers.js";
import { participantHandlers } from "./transport/participant-handlers.js";
import { sharedStateHandlers } from "./transport/shared-state-handlers.js";
import { createGrpcServer } from "./transport/server.js";
import { watchContextHandler } from "./transport/watch-handler.js";
import { WatchQuota } from "./transport/watch-quota.js";
import { watchHandler } from "./transport/watch-stream-handler.js";

export interface App {
  /** The port the server listens on. */
  readonly port: number;
  /** The port of /metrics, /healthz and /readyz. */
  readonly metricsPort: number;
  readonly database: Database;
  /** Health NOT_SERVING, drain in-flight calls (cut off after the grace period), close the database. */
  stop(): Promise<void>;
}

/** Opens (and migrates) the database, then serves; health turns SERVING only when all is ready. */
export async function startApp(config: Config, logger: Logger): Promise<App> {
  const tracing = startTracing({ endpoint: config.otelExporterEndpoint, serviceName: "mplp-context" });
  const database = await openDatabase({
    ...(config.databaseUrl === undefined ? {} : { url: config.databaseUrl }),
    pgliteDataDir: config.pgliteDataDir,
    poolMax: config.databasePoolMax,
    statementTimeoutMs: config.databaseStatementTimeoutMs,
    readUrls: config.databaseReadUrls,
    readReplicaMaxLagMs: config.readReplicaMaxLagMs,
    queryTracer: tracing.queryTracer,
    logger,
  });
  // Every commit rings "context X is at revision N" for the watch hubs of all instances.
  const shared = config.redisUrl !== undefined;
  const redisDoorbell = config.redisUrl === undefined ? undefined : new RedisDoorbell({ url: config.redisUrl, keyPrefix: config.redisKeyPrefix, logger });
  const doorbell: Doorbell = redisDoorbell ?? new LocalDoorbell();
  // One operation at a time on PGlite (one connection); a pool's worth on Postgres.
  const pglite = database.kind === "pglite";
  const poolMax = pglite ? 1 : config.databasePoolMax;
  const queue = new WorkQueue({ concurrency: poolMax, maxWaitMs: config.databaseQueueTimeoutMs, yieldFirst: pglite });
  const pgStore = new PgContextStore(database, {
    queue,
    onCommit: (heads, committed) => {
      // First the read cache, before the caller is answered: its next read sees this revision.
      for (const [contextId, revision] of heads) reads.committed(contextId, revision);
      // This instance's own watchers get the events straight away (no read-back); then the ring,
      // for the other instances (and as the fallback here).
      for (const [contextId, revision] of heads) hub.committed(contextId, revision, () => committed.of(contextId));
      // With Redis, a small revision's events ride along: the other instances deliver them unread.
      for (const [contextId, revision] of heads) doorbell.ring(contextId, revision, shared ? committed.wire(contextId) : undefined);
    },
  });
  const reads = readPath(pgStore, config, doorbell, logger);
  // A commit's ring goes out in the same Redis command as its cache stamps (one write, one wakeup of Redis).
  if (reads.ringCarrier !== null) redisDoorbell?.carryRingsWith(reads.ringCarrier);
  const store = reads.store;
  const metrics = new PrometheusMetrics();
  if (reads.counters !== null) metrics.observeCache(reads.counters);
  const replicas = database.replicas;
  if (replicas !== undefined) metrics.observeReplicas(() => replicas.counters(), () => replicas.status());
  const hub = new WatchHub(store, doorbell, { queueRevisions: config.watchQueueRevisions, reconcileMs: config.watchReconcileMs, decodeEvents: eventsFromWire }, logger);
  metrics.observeDatabase(() => database.sql.counters);
  metrics.observeWork(poolMax, () => pgStore.operationsInFlight, () => hub.backlog, queue);
  const presence = { ttlMs: config.presenceTtlMs, activityTimeoutMs: config.participantActivityTimeoutMs };
  // One write path for every service: writes to one context from this instance go one at a time.
  const writes = new Writes(store, systemClock, config.databaseQueueTimeoutMs);
  const contexts = new ContextService(store, systemClock, { sharedStateMaxBytes: config.sharedStateMaxBytes }, writes);
  const state = new SharedStateService(store, systemClock, { maxBytes: config.sharedStateMaxBytes, snapshotInterval: config.stateSnapshotInterval }, writes);
  const participants = new ParticipantService(store, systemClock, presence, writes);
  const sweeper = new Sweeper(store, systemClock, presence, { intervalMs: config.sweepIntervalMs, batchSize: config.sweepBatchSize, retentionRevisions: config.eventRetentionRevisions }, logger, metrics);
  // Every instance's rings (this one's too): the contexts the compaction sweep looks up by key.
  const unsubscribeSweeper = doorbell.subscribe((contextId) => sweeper.revised(contextId));
  // One count of open watches per principal, whichever RPC holds them.
  const watchQuota = new WatchQuota(config.watchMaxPerPrincipal);
  const watchHandlers = {
    watchContext: watchContextHandler(hub, { quota: watchQuota, metrics }),
    watch: watchHandler(hub, { maxPerStream: config.watchMaxPerStream, quota: watchQuota, metrics, logger }),
  };
  const server = createGrpcServer({
    config,
    logger,
    handlers: { context: { ...contextHandlers(contexts), ...sharedStateHandlers(state), ...watchHandlers }, participant: participantHandlers(participants) },
    metrics,
    tracing,
  });
  let port: number;
  let metricsServer: MetricsServer | undefined;
  // Mirrors gRPC health: /readyz answers 200 only between "serving" and the start of shutdown.
  let serving = false;
  try {
    // The metrics port first: if it is taken, start-up fails before gRPC ever says it is listening.
    metricsServer = await startMetricsServer({
      host: config.metricsHost,
      port: config.metricsPort,
      logger,
      scrape: () => metrics.scrape(),
      ready: async () => {
        if (!serving) return false;
        await database.ping();
        return true;
      },
    });
    port = await server.start();
  } catch (error) {
    await metricsServer?.close();
    await server.shutdown();
    await tracing.shutdown();
    await hub.close();
    await reads.close();
    unsubscribeSweeper();
    await doorbell.close();
    await database.close();
    throw error;
  }
  sweeper.start();
  server.setServing(true);
  serving = true;
  logger.info(
    { address: `${config.grpcHost}:${port}`, metrics: `${config.metricsHost}:${metricsServer.port}`, database: database.kind, ...(database.kind === "pglite" ? { dataDir: config.pgliteDataDir } : {}) },
    "mplp-context serving",
  );
  let stopping: Promise<void> | undefined;
  return {
    port,
    metricsPort: metricsServer.port,
    database,
    stop() {
      stopping ??= (async () => {
        serving = false;
        server.setServing(false);
        await sweeper.stop();
        unsubscribeSweeper();
        // Watch streams never end on their own: end them (clients resume elsewhere) before draining.
        await hub.close();
        await server.shutdown();
        await reads.close();
        await doorbell.close();
        await database.close();
        // The spans of the last calls, exported before the process goes.
        await tracing.shutdown();
        // Last: /healthz and /metrics stay up through the drain, so a scrape sees the shutdown.
        await metricsServer.close();
      })();
      return stopping;
    },
  };
}
