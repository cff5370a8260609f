import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { eq } from "drizzle-orm";
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
