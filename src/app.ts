/**
 * The composition root: config → database → stores → services (and the expiry sweeper) → gRPC server. main.ts runs it as
 * a process; the end-to-end tests run it in-process on port 0.
 */
import type { Config } from "./config.js";
import type { Logger } from "./logger.js";
import { ContextService } from "./service/context-service.js";
import { ParticipantService } from "./service/participant-service.js";
import { systemClock } from "./service/ports.js";
import { Sweeper } from "./service/sweeper.js";
import { PgContextStore } from "./store/context-store.js";
import { openDatabase, type Database } from "./store/database.js";
import { contextHandlers } from "./transport/context-handlers.js";
import { participantHandlers } from "./transport/participant-handlers.js";
import { createGrpcServer } from "./transport/server.js";

export interface App {
  /** The port the server listens on. */
  readonly port: number;
  readonly database: Database;
  /** Health NOT_SERVING, drain in-flight calls (cut off after the grace period), close the database. */
  stop(): Promise<void>;
}

/** Opens (and migrates) the database, then serves; health turns SERVING only when all is ready. */
export async function startApp(config: Config, logger: Logger): Promise<App> {
  const database = await openDatabase({
    ...(config.databaseUrl === undefined ? {} : { url: config.databaseUrl }),
    pgliteDataDir: config.pgliteDataDir,
    poolMax: config.databasePoolMax,
    statementTimeoutMs: config.databaseStatementTimeoutMs,
    logger,
  });
  const store = new PgContextStore(database);
  const presence = { ttlMs: config.presenceTtlMs, activityTimeoutMs: config.participantActivityTimeoutMs };
  const contexts = new ContextService(store, systemClock);
  const participants = new ParticipantService(store, systemClock, presence);
  const sweeper = new Sweeper(store, systemClock, presence, { intervalMs: config.sweepIntervalMs, batchSize: config.sweepBatchSize }, logger);
  const server = createGrpcServer({
    config,
    logger,
    handlers: { context: contextHandlers(contexts), participant: participantHandlers(participants) },
  });
  let port: number;
  try {
    port = await server.start();
  } catch (error) {
    await database.close();
    throw error;
  }
  sweeper.start();
  server.setServing(true);
  logger.info(
    { address: `${config.grpcHost}:${port}`, database: database.kind, ...(database.kind === "pglite" ? { dataDir: config.pgliteDataDir } : {}) },
    "mplp-context serving",
  );
  let stopping: Promise<void> | undefined;
  return {
    port,
    database,
    stop() {
      stopping ??= (async () => {
        await sweeper.stop();
        await server.shutdown();
        await database.close();
      })();
      return stopping;
    },
  };
}
