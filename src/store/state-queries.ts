/**
 * The SQL of versioned shared state: the state column, its snapshots, the STATE_CHANGED events a
 * reader replays onto a snapshot, the heads the watch hub reconciles with, and compaction. Plain
 * functions on an Executor, so PgContextTx (inside the caller's transaction) and PgContextStore
 * (reads outside one) share them.
 */
import { and, asc, desc, eq, gt, lt, lte, sql } from "drizzle-orm";
import { AppError } from "../domain/app-error.js";
import type { ContextEvent } from "../domain/event.js";
import type { SharedState } from "../domain/shared-state.js";
import { eventFromRow, sharedStateOf } from "./context-rows.js";
import type { Executor } from "./executor.js";
import { contextEvents, contexts, stateSnapshots } from "./schema.js";

/** Writes the shared_state column of a context the caller has locked. */
export async function writeSharedState(q: Executor, contextId: string, state: SharedState): Promise<void> {
  const updated = await q
    .update(contexts)
    .set({ sharedState: sharedStateOf(state) })
    .where(eq(contexts.contextId, contextId))
    .returning({ contextId: contexts.contextId });
  // The caller locked the row first, so it cannot have vanished; say so loudly if it did.
  if (updated.length === 0) throw AppError.contextNotFound(contextId);
}

/**
 * Stores the state at `revision`. Saving the same revision twice keeps the first row: the state at
 * a revision is a fact, so a second copy can only be the same (a retried sweep, say).
 */
export async function insertStateSnapshot(
  q: Executor,
  snapshot: { readonly contextId: string; readonly revision: number; readonly state: SharedState; readonly createdAt: Date },
): Promise<void> {
  await q
    .insert(stateSnapshots)
    .values({ ...snapshot, state: sharedStateOf(snapshot.state) })
    .onConflictDoNothing({ target: [stateSnapshots.contextId, stateSnapshots.revision] });
}

/** The newest snapshot at or before `revision`: one backward step in state_snapshots_pkey. */
export async function selectSnapshotAtOrBefore(
  q: Executor,
  contextId: string,
  revision: number,
): Promise<{ revision: number; state: SharedState } | null> {
  const rows = await q
    .select({ revision: stateSnapshots.revision, state: stateSnapshots.state })
    .from(stateSnapshots)
    .where(and(eq(stateSnapshots.contextId, contextId), lte(stateSnapshots.revision, revision)))
    .orderBy(desc(stateSnapshots.revision))
    .limit(1);
  return rows[0] ?? null;
}

/**
 * STATE_CHANGED events with after < revision <= upTo in (revision, seq) order: a range of
 * context_events_pkey, the other event types filtered out on the way (they are a minority of a
 * busy context's events, and an index for them alone would cost every write).
 */
export async function selectStateChanges(q: Executor, contextId: string, after: number, upTo: number): Promise<ContextEvent[]> {
  const rows = await q
    .select()
    .from(contextEvents)
    .where(
      and(
        eq(contextEvents.contextId, contextId),
        gt(contextEvents.revision, after),
        lte(contextEvents.revision, upTo),
        eq(contextEvents.type, "STATE_CHANGED"),
      ),
    )
    .orderBy(asc(contextEvents.revision), asc(contextEvents.seq));
  return rows.map(eventFromRow);
}

/**
 * The revision of each context that still exists, in one statement whatever the count:
 * `context_id = any($1::uuid[])` is a single array parameter, where IN (…) would bind one
 * parameter per id (and hit the protocol's 65535 limit on a busy hub).
 */
export async function selectHeads(q: Executor, contextIds: readonly string[]): Promise<Map<string, number>> {
  const heads = new Map<string, number>();
  if (contextIds.length === 0) return heads;
  // The array is passed as text ('{…}' literal) so both drivers bind it the same way; uuids need no quoting.
  const rows = await q
    .select({ contextId: contexts.contextId, revision: contexts.revision })
    .from(contexts)
    .where(sql`${contexts.contextId} = any(${`{${contextIds.join(",")}}`}::uuid[])`);
  for (const row of rows) heads.set(row.contextId, row.revision);
  return heads;
}

/**
 * Drops a context's events up to `upTo` and the snapshots no longer needed as a replay base (those
 * older than the newest one at or before upTo), then records compact_revision = upTo. Runs in the
 * caller's transaction, which holds the context's row lock, so readers see all of it or none.
 */
export async function compactContextHistory(q: Executor, contextId: string, upTo: number): Promise<void> {
  await q.delete(contextEvents).where(and(eq(contextEvents.contextId, contextId), lte(contextEvents.revision, upTo)));
  // With no snapshot at or before upTo the max is null, the comparison unknown, and nothing goes.
  const newestBase = sql`(select max(${stateSnapshots.revision}) from ${stateSnapshots} where ${stateSnapshots.contextId} = ${contextId} and ${stateSnapshots.revision} <= ${upTo})`;
  await q.delete(stateSnapshots).where(and(eq(stateSnapshots.contextId, contextId), lt(stateSnapshots.revision, newestBase)));
  const updated = await q
    .update(contexts)
    .set({ compactRevision: upTo })
    .where(eq(contexts.contextId, contextId))
    .returning({ contextId: contexts.contextId });
  if (updated.length === 0) throw AppError.contextNotFound(contextId);
}
