/**
 * Databases for integration tests: an in-memory PGlite, and a fresh database on the machine's
 * Postgres for each test file. `describeOnStores` runs one suite against both, so the embedded and
 * the production database are held to the same behaviour.
 *
 * Postgres missing on a dev machine skips its half with a warning; with CI set it fails the run,
 * so a broken CI database can never pass as green.
 */
import { randomBytes } from "node:crypto";
import postgres from "postgres";
import { afterAll, beforeAll, beforeEach, describe } from "vitest";
import { silentLogger } from "../../src/logger.js";
import { openDatabase, type Database } from "../../src/store/database.js";
import { contextEvents, contexts, participants, requestKeys, stateSnapshots } from "../../src/store/schema.js";

/** The server test databases are created on; the URL's own database is only used to create and drop. */
export const TEST_DATABASE_URL = process.env["TEST_DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/postgres";

/** An in-memory, migrated PGlite. It takes seconds to start: open one per test file. */
export async function openTestPglite(): Promise<Database> {
  return openDatabase({ pgliteDataDir: "memory://", poolMax: 1, statementTimeoutMs: 30_000, logger: silentLogger() });
}

/** A Database on a throwaway Postgres database, and how to get rid of it. */
export interface TestPostgres {
  readonly database: Database;
  readonly url: string;
  /** Closes the Database and drops its database. */
  drop(): Promise<void>;
}

function adminConnection(): postgres.Sql {
  return postgres(TEST_DATABASE_URL, { max: 1, onnotice: () => {}, connect_timeout: 3 });
}

/** An empty database on TEST_DATABASE_URL's server: its URL, and how to drop it. */
export interface EmptyTestDatabase {
  readonly url: string;
  /** Drops the database, ending any session still on it. */
  drop(): Promise<void>;
}

/** Creates an empty `mplp_test_<random>` on TEST_DATABASE_URL's server. */
export async function createTestPostgresDatabase(): Promise<EmptyTestDatabase> {
  const name = `mplp_test_${randomBytes(6).toString("hex")}`;
  const admin = adminConnection();
  try {
    await admin.unsafe(`create database "${name}"`);
  } finally {
    await admin.end({ timeout: 5 });
  }
  const url = new URL(TEST_DATABASE_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const dropper = adminConnection();
      try {
        // WITH (FORCE) (Postgres 13+) ends sessions a failed test may have left behind.
        await dropper.unsafe(`drop database if exists "${name}" with (force)`);
      } finally {
        await dropper.end({ timeout: 5 });
      }
    },
  };
}

/** Creates `mplp_test_<random>` on TEST_DATABASE_URL's server and opens a migrated Database on it. */
export async function openTestPostgres(options: { readonly poolMax?: number } = {}): Promise<TestPostgres> {
  const empty = await createTestPostgresDatabase();
  let database: Database;
  try {
    database = await openDatabase({
      url: empty.url,
      pgliteDataDir: "memory://",
      poolMax: options.poolMax ?? 4,
      statementTimeoutMs: 30_000,
      logger: silentLogger(),
    });
  } catch (error) {
    await empty.drop();
    throw error;
  }
  return {
    database,
    url: empty.url,
    drop: async () => {
      await database.close();
      await empty.drop();
    },
  };
}

let availability: Promise<boolean> | undefined;

/** CI=true (GitHub, GitLab…) or any other value but an explicit "false"/"0". */
function runningInCi(): boolean {
  const ci = process.env["CI"];
  return ci !== undefined && ci !== "" && ci !== "false" && ci !== "0";
}

/**
 * Whether the test Postgres answers. When it does not: on a dev machine, false and a warning
 * (its tests are skipped); with CI set, an error, so the run fails instead of skipping.
 */
export function postgresAvailable(): Promise<boolean> {
  availability ??= (async () => {
    const probe = adminConnection();
    try {
      await probe`select 1`;
      return true;
    } catch (error) {
      const where = new URL(TEST_DATABASE_URL).host;
      if (runningInCi()) {
        throw new Error(`Postgres at ${where} (TEST_DATABASE_URL) does not answer, and CI must not skip its tests`, {
          cause: error,
        });
      }
      console.warn(`⚠ Postgres at ${where} (TEST_DATABASE_URL) does not answer: its integration tests are SKIPPED.`);
      return false;
    } finally {
      await probe.end({ timeout: 1 }).catch(() => {});
    }
  })();
  return availability;
}

/** Empties every table, so each test starts from nothing (query builder: works on both drivers). */
export async function resetDatabase(database: Database): Promise<void> {
  await database.db.delete(participants);
  await database.db.delete(stateSnapshots);
  await database.db.delete(contextEvents);
  await database.db.delete(requestKeys);
  await database.db.delete(contexts);
}

/** What a suite run by `describeOnStores` gets: the open Database, valid inside tests and hooks. */
export interface StoreUnderTest {
  readonly kind: Database["kind"];
  database(): Database;
}

/**
 * Declares `suite` twice: on PGlite and on Postgres (skipped with a warning when Postgres is down
 * on a dev machine; failing under CI). Each run opens one database for the whole file's suite and
 * empties it before every test. Call it with `await` at the top level of a test file.
 */
export async function describeOnStores(name: string, suite: (store: StoreUnderTest) => void): Promise<void> {
  const postgresUp = await postgresAvailable();

  describe(`${name} (PGlite)`, () => {
    let database: Database | undefined;
    beforeAll(async () => {
      database = await openTestPglite();
    });
    afterAll(async () => {
      await database?.close();
    });
    beforeEach(async () => {
      if (database) await resetDatabase(database);
    });
    suite({ kind: "pglite", database: () => required(database) });
  });

  describe.skipIf(!postgresUp)(`${name} (Postgres)`, () => {
    let handle: TestPostgres | undefined;
    beforeAll(async () => {
      handle = await openTestPostgres();
    });
    afterAll(async () => {
      await handle?.drop();
    });
    beforeEach(async () => {
      if (handle) await resetDatabase(handle.database);
    });
    suite({ kind: "postgres", database: () => required(handle?.database) });
  });
}

function required(database: Database | undefined): Database {
  if (database === undefined) throw new Error("the test database is not open (did beforeAll fail?)");
  return database;
}
