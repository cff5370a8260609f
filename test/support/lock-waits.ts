/**
 * Waiting for another session to block on a lock (Postgres): the event a row-lock test waits for,
 * instead of sleeping and hoping the statement got there.
 */
import { expect } from "vitest";
import type { Database } from "../../src/store/database.js";

/** Sessions of this test database now waiting for a lock. */
export async function lockWaiters(database: Database): Promise<number> {
  const rows = await database.sql.query(
    `select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`,
    [],
  );
  return Number(rows[0]?.["n"] ?? 0);
}

/** Resolves once at least `count` sessions wait for a lock. */
export async function untilWaitingOnLocks(database: Database, count = 1): Promise<void> {
  await expect.poll(() => lockWaiters(database), { timeout: 10_000, interval: 10 }).toBeGreaterThanOrEqual(count);
}

/** A promise and the function that resolves it. */
export function signal(): { readonly promise: Promise<void>; readonly fire: () => void } {
  let fire!: () => void;
  const promise = new Promise<void>((resolve) => (fire = resolve));
  return { promise, fire };
}
