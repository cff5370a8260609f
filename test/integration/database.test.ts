import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { eq, sql } from "drizzle-orm";
import { afterEach, describe, expect, it } from "vitest";
import { silentLogger } from "../../src/logger.js";
import { openDatabase, type Database } from "../../src/store/database.js";
import { requestKeys } from "../../src/store/schema.js";
import { createTestPostgresDatabase, postgresAvailable } from "../support/databases.js";

const postgresUp = await postgresAvailable();
const options = { pgliteDataDir: "memory://", poolMax: 2, statementTimeoutMs: 5_000, logger: silentLogger() };

describe(openDatabase.name, () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it("creates a PGlite data directory, and reopening it keeps the data and re-runs no migration", async () => {
    const parent = await mkdtemp(join(tmpdir(), "mplp-pglite-"));
    cleanups.push(() => rm(parent, { recursive: true, force: true }));
    const dataDir = join(parent, "nested", "pglite");
    const key = { principal: "p", requestId: randomUUID(), method: "CreateContext", createdAt: new Date() };

    const first = await openDatabase({ ...options, pgliteDataDir: dataDir });
    expect(first.kind).toBe("pglite");
    await first.db.insert(requestKeys).values(key);
    await first.close();

    const second = await openDatabase({ ...options, pgliteDataDir: dataDir });
    try {
      await second.ping();
      const rows = await second.db.select().from(requestKeys).where(eq(requestKeys.requestId, key.requestId));
      expect(rows).toHaveLength(1);
    } finally {
      await second.close();
    }
  });

  it("analyzes PGlite when it opens, then vacuums and analyzes each table once it changed enough (PGlite has no autovacuum)", async () => {
    const parent = await mkdtemp(join(tmpdir(), "mplp-pglite-"));
    cleanups.push(() => rm(parent, { recursive: true, force: true }));
    const dataDir = join(parent, "pglite");
    const keys = (from: number, count: number) =>
      Array.from({ length: count }, (_, i) => ({ principal: "p", requestId: `r-${from + i}`, method: "CreateContext", createdAt: new Date() }));
    const filled = await openDatabase({ ...options, pgliteDataDir: dataDir });
    await filled.db.insert(requestKeys).values(keys(0, 500));
    await filled.close();

    const reopened = await openDatabase({ ...options, pgliteDataDir: dataDir, pgliteMaintenanceMs: 50 });
    cleanups.push(() => reopened.close());
    const stats = async (table: string) => {
      const result: unknown = await reopened.db.execute(
        sql`select c.reltuples::int as n, s.analyze_count::int as analyzed, s.vacuum_count::int as vacuumed
            from pg_class c join pg_stat_user_tables s on s.relid = c.oid where c.relname = ${table}`,
      );
      // PGlite answers {rows}; the shape differs from postgres.js's array (RECIPES.md).
      const [row] = (result as { rows: { n: number; analyzed: number; vacuumed: number }[] }).rows;
      return row!;
    };
    // At open: the planner knows the 500 rows written while no server ran.
    expect((await stats("request_keys")).n).toBe(500);
    const atOpen = await stats("participants");

    // 150 more rows pass ANALYZE's threshold (50 + 10 % of 500): analyzed within a few checks.
    await reopened.db.insert(requestKeys).values(keys(500, 150));
    await expect.poll(async () => (await stats("request_keys")).n, { timeout: 10_000 }).toBe(650);
    // Deleting 400 leaves dead rows past VACUUM's (50 + 20 % of 650): vacuumed, and counted again.
    const beforeDelete = await stats("request_keys");
    await reopened.db.delete(requestKeys).where(sql`${requestKeys.requestId} < 'r-4'`);
    await expect.poll(async () => (await stats("request_keys")).vacuumed, { timeout: 10_000 }).toBeGreaterThan(beforeDelete.vacuumed);
    await expect.poll(async () => (await stats("request_keys")).n, { timeout: 10_000 }).toBeLessThan(650);
    // A table nothing wrote to was left alone all along.
    expect(await stats("participants")).toEqual(atOpen);
  });

  it.runIf(postgresUp)("lets several instances open and migrate one empty Postgres database at once", async () => {
    const empty = await createTestPostgresDatabase();
    cleanups.push(() => empty.drop());
    // Pool size 1: the migration lock must not need a second pooled connection.
    const opened = await Promise.allSettled([1, 2, 3, 4].map(() => openDatabase({ ...options, url: empty.url, poolMax: 1 })));
    const databases = opened.flatMap((o) => (o.status === "fulfilled" ? [o.value] : []));
    for (const database of databases) cleanups.push(() => database.close());
    expect(opened.filter((o) => o.status === "rejected")).toEqual([]);
    await Promise.all(databases.map((d: Database) => d.ping()));
    expect(databases.map((d) => d.kind)).toEqual(["postgres", "postgres", "postgres", "postgres"]);
  });
});
