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
import type { Logger } from "../logger.js";
import * as schema from "./schema.js";

/** The one drizzle type both drivers fit; stores are written against it. */
export type AppDatabase = PgDatabase<PgQueryResultHKT, typeof schema>;

/** An open, migrated database. */
export interface Database {
  readonly kind: "postgres" | "pglite";
  readonly db: AppDatabase;
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
  readonly logger: Logger;
}

/** Shown in pg_stat_activity, so an operator can tell this service's connections apart. */
const APPLICATION_NAME = "mplp-context";

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
  const client = postgres(url, {
    max: options.poolMax,
    // The migrator's "already exists, skipping" notices would otherwise fill the log.
    onnotice: () => {},
    connection: {
      application_name: APPLICATION_NAME,
      // A ceiling for calls without a deadline; calls with one lower it per transaction.
      statement_timeout: options.statementTimeoutMs,
    },
  });
  const db = drizzlePostgres({ client, schema });
  try {
    await underMigrationLock(url, () => migratePostgres(db, { migrationsFolder: migrationsFolder() }));
  } catch (error) {
    await client.end({ timeout: 5 });
    throw error;
  }
  options.logger.info({ database: "postgres", target: describeUrl(url), poolMax: options.poolMax }, "database open and migrated");
  return {
    kind: "postgres",
    db,
    ping: async () => {
      await db.execute(sql`select 1`);
    },
    close: () => client.end({ timeout: 5 }),
  };
}

async function openPglite(options: DatabaseOptions): Promise<Database> {
  const dataDir = options.pgliteDataDir;
  if (!dataDir.startsWith("memory://")) await mkdir(dataDir, { recursive: true });
  const client = await PGlite.create(dataDir);
  const db = drizzlePglite({ client, schema });
  try {
    await migratePglite(db, { migrationsFolder: migrationsFolder() });
  } catch (error) {
    await client.close();
    throw error;
  }
  options.logger.info({ database: "pglite", dataDir }, "database open and migrated");
  let closed = false;
  return {
    kind: "pglite",
    db,
    ping: async () => {
      await db.execute(sql`select 1`);
    },
    close: async () => {
      // PGlite throws when closed twice; shutdown paths may well call close() more than once.
      if (closed) return;
      closed = true;
      await client.close();
    },
  };
}
