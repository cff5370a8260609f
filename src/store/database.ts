/**
 * Opens the database the stores run on: Postgres through postgres.js when a URL is configured,
 * otherwise PGlite embedded in the process (the same SQL and migrations). Either way the schema
 * is migrated before the Database is handed out, so callers never see an unmigrated one.
 */
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { PGlite } from "@electric-sql/pglite";
import { sql } from "drizzle-orm";
import type { PgDatabase, PgQueryResultHKT } from "drizzle-orm/pg-core";
import { drizzle as drizzlePglite } from "drizzle-orm/pglite";
import { migrate as migratePglite } from "drizzle-orm/pglite/migrator";
import { drizzle as drizzlePostgres } from "drizzle-orm/postgres-js";
import { migrate as migratePostgres } from "drizzle-orm/postgres-js/migrator";
import postgres from "postgres";
import type { Tracer } from "@opentelemetry/api";
import type { Logger } from "../logger.js";
import { PgliteMaintenance } from "./pglite-maintenance.js";
import { primaryPosition, ReadReplicas, replicaProbe, type ReplicaTarget } from "./read-replicas.js";
import { traceQueries } from "./query-tracing.js";
import * as schema from "./schema.js";
import { PgliteSqlClient, PostgresSqlClient, type SqlClient } from "./sql-client.js";

/** The one drizzle type both drivers fit; stores are written against it. */
export type AppDatabase = PgDatabase<PgQueryResultHKT, typeof schema>;

/** An open, migrated database. */
export interface Database {
  readonly kind: "postgres" | "pglite";
  /** What the store's own statements run on (sql-client.ts): every call's reads and writes. */
  readonly sql: SqlClient;
  /** drizzle on the same connections: the migrations, the sweepers' candidate queries and tests. */
  readonly db: AppDatabase;
  /**
   * The read replicas (DATABASE_READ_URL) on Postgres, when any are configured: reads marked
   * replicaOk go through it. Readiness and every write ignore them.
   */
  readonly replicas?: ReadReplicas<SqlClient> | undefined;
  /** Resolves when the database answers a trivial query (readiness checks). */
  ping(): Promise<void>;
  /** Closes the connections (postgres.js waits a few seconds for running queries). */
  close(): Promise<void>;
}

export interface DatabaseOptions {
  /** postgres:// URL; unset → embedded PGlite. */
  readonly url?: string | undefined;
  /** PGlite's data directory, or "memory://" for a throwaway in-memory database. */
  readonly pgliteDataDir: string;
  /** Most connections postgres.js opens. */
  readonly poolMax: number;
  /** The session's statement_timeout: the longest any statement runs when a call has no deadline. */
  readonly statementTimeoutMs: number;
  /** postgres:// URLs of read replicas; none → every read goes to the primary. Ignored (with a warning) on PGlite. */
  readonly readUrls?: readonly string[] | undefined;
  /** A replica further behind the primary than this is skipped; 1000 unless set. */
  readonly readReplicaMaxLagMs?: number | undefined;
  /** How often the replicas' lags are measured; unless set, every half of the maximum lag, from 50 to 500 ms. */
  readonly readReplicaProbeIntervalMs?: number | undefined;
  /** PGlite only: how often its statistics are checked for tables to vacuum or analyze (pglite-maintenance.ts). */
  readonly pgliteMaintenanceMs?: number | undefined;
  /** With OTEL_EXPORTER_OTLP_ENDPOINT: every SQL statement run under a call's span becomes a child span (query-tracing.ts). */
  readonly queryTracer?: Tracer | undefined;
  readonly logger: Logger;
}

/** Shown in pg_stat_activity, so an operator can tell this service's connections apart. */
const APPLICATION_NAME = "mplp-context";

/**
 * A replica that does not accept a connection within this many seconds counts as down (the read
 * goes to the primary); postgres.js would otherwise wait 30 s.
 */
const REPLICA_CONNECT_TIMEOUT_SECONDS = 2;

/**
 * The migrations folder, found by walking up from this file to the directory holding package.json:
 * this file runs from src/store (vitest, tsx) and from dist/src/store (compiled), at different depths.
 */
export function migrationsFolder(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, "package.json"))) return join(dir, "migrations");
    const parent = dirname(dir);
    if (parent === dir) throw new Error("cannot find the migrations folder: no package.json above the store module");
    dir = parent;
  }
}

/** Opens (and migrates) the configured database. */
export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  return options.url === undefined || options.url === ""
    ? openPglite(options)
    : openPostgres(options.url, options);
}

/** The host and database of a URL, for the log: never its credentials. */
function describeUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.hostname}:${parsed.port || "5432"}${parsed.pathname}`;
  } catch {
    return "(unparsable url)";
  }
}

/** Arbitrary, fixed: the advisory lock key every instance of this service migrates under. */
const MIGRATION_LOCK_KEY = 5_163_021_770;

/**
 * Runs `migrate` while holding a session advisory lock, so instances starting together migrate
 * one after another: drizzle's migrator takes no lock, and two running the same CREATE TABLE at
 * once would fail one instance's start. The lock lives on a connection of its own (the pool may
 * have a single one, which the migrator needs); ending that session releases it, even on failure.
 */
async function underMigrationLock(url: string, migrate: () => Promise<void>): Promise<void> {
  const lock = postgres(url, { max: 1, onnotice: () => {}, connection: { application_name: `${APPLICATION_NAME} migrate` } });
  try {
    await lock`select pg_advisory_lock(${MIGRATION_LOCK_KEY})`;
    await migrate();
  } finally {
    await lock.end({ timeout: 5 });
  }
}

async function openPostgres(url: string, options: DatabaseOptions): Promise<Database> {
  const client = traceQueries(postgres(url, {
    max: options.poolMax,
    // The migrator's "already exists, skipping" notices would otherwise fill the log.
    onnotice: () => {},
    connection: {
      application_name: APPLICATION_NAME,
      // A ceiling for calls without a deadline; calls with one lower it per transaction.
      statement_timeout: options.statementTimeoutMs,
    },
  }), options.queryTracer);
  const db = drizzlePostgres({ client, schema });
  try {
    await underMigrationLock(url, () => migratePostgres(db, { migrationsFolder: migrationsFolder() }));
  } catch (error) {
    await client.end({ timeout: 5 });
    throw error;
  }
  options.logger.info({ database: "postgres", target: describeUrl(url), poolMax: options.poolMax }, "database open and migrated");
  const replicas = await openReplicas(url, options);
  return {
    kind: "postgres",
    sql: new PostgresSqlClient(client),
    db,
    replicas,
    ping: async () => {
      await db.execute(sql`select 1`);
    },
    close: async () => {
      await replicas?.close();
      await client.end({ timeout: 5 });
    },
  };
}

/**
 * A pool per replica URL, not migrated (a replica has the primary's schema, and is read-only),
 * half the primary's size (at least 2: a list runs its page and its count at once), with the
 * primary's session settings; plus one connection per replica, and one to the primary, for the lag
 * probes. The first probe round is awaited, so reads use the replicas from the start; a replica
 * down at start-up only logs a warning and joins when it answers.
 */
async function openReplicas(primaryUrl: string, options: DatabaseOptions): Promise<ReadReplicas<SqlClient> | undefined> {
  const urls = options.readUrls ?? [];
  if (urls.length === 0) return undefined;
  const poolMax = Math.max(2, Math.ceil(options.poolMax / 2));
  const maxLagMs = options.readReplicaMaxLagMs ?? 1_000;
  // A lag is known to within about a probe interval: measure it at least twice per allowed lag.
  const probeIntervalMs = options.readReplicaProbeIntervalMs ?? Math.min(500, Math.max(50, Math.floor(maxLagMs / 2)));
  const probeConnection = (url: string) =>
    postgres(url, {
      max: 1,
      onnotice: () => {},
      connect_timeout: REPLICA_CONNECT_TIMEOUT_SECONDS,
      connection: { application_name: `${APPLICATION_NAME} lag-probe`, statement_timeout: REPLICA_CONNECT_TIMEOUT_SECONDS * 1000 },
    });
  const primaryProbe = probeConnection(primaryUrl);
  const targets = urls.map((url): ReplicaTarget<SqlClient> => {
    const client = postgres(url, {
      max: poolMax,
      onnotice: () => {},
      connect_timeout: REPLICA_CONNECT_TIMEOUT_SECONDS,
      connection: { application_name: APPLICATION_NAME, statement_timeout: options.statementTimeoutMs },
    });
    const probe = probeConnection(url);
    return {
      name: describeUrl(url),
      handle: new PostgresSqlClient(traceQueries(client, options.queryTracer)),
      probe: replicaProbe(probe),
      close: async () => {
        await Promise.all([client.end({ timeout: 5 }), probe.end({ timeout: 1 })]);
      },
    };
  });
  const replicas = new ReadReplicas(targets, {
    primary: primaryPosition(primaryProbe),
    maxLagMs,
    probeIntervalMs,
    probeTimeoutMs: REPLICA_CONNECT_TIMEOUT_SECONDS * 1000 + probeIntervalMs,
    logger: options.logger,
  });
  await replicas.start();
  options.logger.info(
    { replicas: replicas.status(), poolMax, maxLagMs, probeIntervalMs },
    "read replicas open",
  );
  return replicas;
}

async function openPglite(options: DatabaseOptions): Promise<Database> {
  if ((options.readUrls ?? []).length > 0) {
    // Replicas of an in-process database cannot exist: a leftover setting, not worth refusing to start.
    options.logger.warn("DATABASE_READ_URL is ignored: read replicas need DATABASE_URL (a Postgres primary), not embedded PGlite");
  }
  const dataDir = options.pgliteDataDir;
  if (!dataDir.startsWith("memory://")) await mkdir(dataDir, { recursive: true });
  const client = traceQueries(await PGlite.create(dataDir), options.queryTracer);
  const db = drizzlePglite({ client, schema });
  try {
    await migratePglite(db, { migrationsFolder: migrationsFolder() });
  } catch (error) {
    await client.close();
    throw error;
  }
  options.logger.info({ database: "pglite", dataDir }, "database open and migrated");
  let closed = false;
  const maintenance = new PgliteMaintenance(client, options.logger, options.pgliteMaintenanceMs);
  await maintenance.start();
  return {
    kind: "pglite",
    sql: new PgliteSqlClient(client, options.queryTracer),
    db,
    ping: async () => {
      await db.execute(sql`select 1`);
    },
    close: async () => {
      // PGlite throws when closed twice; shutdown paths may well call close() more than once.
      if (closed) return;
      closed = true;
      await maintenance.stop();
      await client.close();
    },
  };
}
