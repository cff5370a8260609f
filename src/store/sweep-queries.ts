/**
 * The sweepers' candidate queries (SweepCandidates in ports.ts). They only find context ids: plain
 * SELECTs, no locks, each served by a partial index (compaction's by a bounded slice of the primary
 * key). The sweeper then locks each context with skipLocked and checks again under the lock, so a
 * candidate that another instance is already handling, or that changed since, costs nothing and is
 * never handled twice.
 */
import { and, eq, lte, ne, sql } from "drizzle-orm";
import type { SweepCandidates } from "../service/ports.js";
import type { AppDatabase } from "./database.js";
import type { SqlClient } from "./sql-client.js";
import { contextEvents, contexts, participants } from "./schema.js";
import { toStoreError } from "./sql-errors.js";

/**
 * Contexts looked at per compaction slice: the backstop (the sweeper looks up the contexts it heard
 * revised by key). At 10,000 a slice, a million-context PGlite spent enough of its one thread on
 * it every second that GetContext's P95 at 100 calls/s was 60.6 ms, against 2.98 ms with the
 * sweeper off (bench scale, 2026-12-07).
 */
const COMPACT_CHUNK = 1_000;
/** Before every context id: where a compaction cycle starts. */
const FIRST_ID = "00000000-0000-0000-0000-000000000000";

/**
 * One compaction slice: the next $3 contexts after $2 by context_id, and up to $4 of them more than
 * $1 revisions past compact_revision. uuid order is the order of their text, so max() of the text
 * is the last id.
 */
const COMPACT_SLICE = `with slice as (
  select c.context_id, c.revision - c.compact_revision > $1::bigint as due
  from contexts c where c.context_id > $2::text::uuid
  order by c.context_id limit $3::int
), taken as (
  select s.context_id from slice s where s.due order by s.context_id limit $4::int
)
select (select count(*) from slice)::int as scanned, (select max(s.context_id::text) from slice s) as last,
  (select max(t.context_id::text) from taken t) as last_due,
  coalesce((select json_agg(t.context_id order by t.context_id) from taken t), '[]'::json) as ids`;

/** Of $1 (an array of context ids, as text), the contexts more than $2 revisions past compact_revision. */
const COMPACT_AMONG = `select c.context_id::text as context_id from contexts c
where c.context_id = any($1::text::uuid[]) and c.revision - c.compact_revision > $2::bigint`;

async function ids(query: Promise<readonly { contextId: string }[]>): Promise<string[]> {
  try {
    return (await query).map((r) => r.contextId);
  } catch (error) {
    throw toStoreError(error);
  }
}

/** SweepCandidates on the database (no call deadline: the sweeper bounds its own passes). */
export class PgSweepCandidates implements SweepCandidates {
  /** Where the next compaction slice starts (exclusive). */
  private compactCursor = FIRST_ID;

  constructor(
    private readonly db: AppDatabase,
    private readonly sql: SqlClient,
    /** Contexts looked at per compaction slice (contextsToCompact). */
    private readonly compactChunk = COMPACT_CHUNK,
  ) {}

  /** Uses participants_active_lease_idx. */
  contextsWithLapsedLeases(now: Date, limit: number): Promise<string[]> {
    return ids(
      this.db
        .selectDistinct({ contextId: participants.contextId })
        .from(participants)
        .where(and(eq(participants.status, "ACTIVE"), lte(participants.leaseExpiresAt, now)))
        .limit(limit),
    );
  }

  /** Uses participants_inactive_since_idx. */
  contextsWithExpiredParticipants(cutoff: Date, limit: number): Promise<string[]> {
    return ids(
      this.db
        .selectDistinct({ contextId: participants.contextId })
        .from(participants)
        .where(and(eq(participants.status, "INACTIVE"), lte(participants.inactiveSince, cutoff)))
        .limit(limit),
    );
  }

  /**
   * Live contexts whose sweep is due (contexts_live_sweep_at_idx): the expired ones, and some up to
   * a tenth of their timeout early, which the sweeper re-arms at their expiry. A null sweep_at
   * (timeout 0) never matches.
   */
  expiredContexts(now: Date, limit: number): Promise<string[]> {
    return ids(
      this.db
        .select({ contextId: contexts.contextId })
        .from(contexts)
        .where(and(ne(contexts.status, "TERMINATED"), lte(contexts.sweepAt, now)))
        .limit(limit),
    );
  }

  /**
   * TERMINATED contexts whose configuration asks for auto-cleanup and whose delay has run out.
   * The delay is per row (configuration.cleanupDelayMs), so the deadline is computed in SQL;
   * `terminated_at <= now` is implied by it (delays are never negative) and is spelled out so
   * contexts_terminated_at_idx bounds the scan. A missing key casts to null, which never matches.
   */
  contextsDueForCleanup(now: Date, limit: number): Promise<string[]> {
    const at = sql`${now.toISOString()}::timestamptz`;
    return ids(
      this.db
        .select({ contextId: contexts.contextId })
        .from(contexts)
        .where(
          and(
            eq(contexts.status, "TERMINATED"),
            lte(contexts.terminatedAt, now),
            sql`(${contexts.configuration}->>'autoCleanup')::boolean`,
            sql`${contexts.terminatedAt} + (${contexts.configuration}->>'cleanupDelayMs')::bigint * interval '1 millisecond' <= ${at}`,
          ),
        )
        .limit(limit),
    );
  }

  /**
   * Contexts whose history runs more than retention + slack revisions past compact_revision, found
   * in slices of `compactChunk` contexts in context_id order, the next pass going on where this one
   * stopped. No index serves the predicate: one comparing two columns of a row against a parameter
   * would need an expression index on (revision - compact_revision), which would change on every
   * revision of every context, a write cost paid by every UpdateSharedState for a sweep. Scanning
   * every context instead costs each pass in proportion to all of them (9 ms of embedded PGlite's
   * one thread per second at 60,000 contexts, a pause of every call; ~150 ms at 1,000,000), while a
   * slice is a bounded walk of the primary key. The price: at 1,000 a slice and one pass a second,
   * a context no instance heard revised is looked at every ~17 min per million contexts — it keeps
   * more history meanwhile, never less than the retention. A context revised while the sweeper
   * listens is looked up by key on the next pass (contextsToCompactAmong).
   */
  async contextsToCompact(retention: number, slack: number, limit: number): Promise<string[]> {
    if (limit <= 0) return [];
    const over = retention + slack;
    try {
      const startedAt = this.compactCursor;
      const found = await this.compactSlice(over, limit);
      if (startedAt === FIRST_ID || this.compactCursor !== FIRST_ID || found.length >= limit) return found;
      // The slice ran to the end: go on from the start within this pass, so the pass still looks
      // at a full slice (and a table smaller than one is looked at whole, every pass).
      const more = await this.compactSlice(over, limit - found.length);
      return [...new Set([...found, ...more])];
    } catch (error) {
      throw toStoreError(error);
    }
  }

  /** By the primary key, one lookup per id: what it costs grows with the contexts revised, not with the table. */
  async contextsToCompactAmong(contextIds: readonly string[], retention: number, slack: number): Promise<string[]> {
    if (contextIds.length === 0) return [];
    try {
      const rows = await this.sql.query(COMPACT_AMONG, [`{${contextIds.join(",")}}`, retention + slack]);
      return rows.map((row) => row["context_id"] as string);
    } catch (error) {
      throw toStoreError(error);
    }
  }

  /** One slice from the cursor; moves the cursor past what was looked at (to the start after the last). */
  private async compactSlice(over: number, limit: number): Promise<string[]> {
    const [row] = await this.sql.query(COMPACT_SLICE, [over, this.compactCursor, this.compactChunk, limit]);
    const scanned = Number(row?.["scanned"] ?? 0);
    const ids = (row?.["ids"] ?? []) as string[];
    const lastDue = row?.["last_due"] as string | null;
    // Due contexts left in the slice past `limit`: resume after the last one taken.
    if (ids.length >= limit && lastDue !== null) this.compactCursor = lastDue;
    // A full slice has a last id; a short one reached the end.
    else this.compactCursor = scanned < this.compactChunk ? FIRST_ID : ((row?.["last"] as string | null) ?? FIRST_ID);
    return ids;
  }

  /**
   * Deletes up to `limit` events, written before `olderThan`, of contexts that no longer exist.
   *
   * Deleted contexts are found from their CONTEXT_DELETED events (the service writes one whenever
   * it deletes a context) through the small partial index context_events_deleted_at_idx, rather
   * than by scanning events by occurred_at: that range holds every retained event of every live
   * context too, and each pass would walk all of it. Each deleted context's events are then a
   * range of context_events_pkey. A context row still present (never the case for a uuid that was
   * deleted, but cheap to check) keeps its events.
   *
   * Two statements, so the CONTEXT_DELETED event — the only way to find the context again — goes
   * only once nothing else of its context is left: first the other events, then the markers of
   * contexts with nothing else remaining, within what is left of the limit. A limit that stops
   * part-way leaves the rest, still findable, for the next pass.
   */
  async purgeDeletedContextEvents(olderThan: Date, limit: number): Promise<number> {
    if (limit <= 0) return 0;
    const before = sql`${olderThan.toISOString()}::timestamptz`;
    const gone = sql`m.type = 'CONTEXT_DELETED' and m.occurred_at < ${before}
      and not exists (select 1 from contexts c where c.context_id = m.context_id)`;
    try {
      const others = await this.db
        .delete(contextEvents)
        .where(
          sql`(${contextEvents.contextId}, ${contextEvents.revision}, ${contextEvents.seq}) in (
            select e.context_id, e.revision, e.seq
            from (select m.context_id from context_events m where ${gone} order by m.occurred_at limit ${limit}) d
            cross join lateral (
              select x.context_id, x.revision, x.seq from context_events x
              where x.context_id = d.context_id and x.occurred_at < ${before} and x.type <> 'CONTEXT_DELETED'
              order by x.revision, x.seq limit ${limit}
            ) e
            limit ${limit})`,
        )
        .returning({ contextId: contextEvents.contextId });
      const left = limit - others.length;
      if (left === 0) return others.length;
      const markers = await this.db
        .delete(contextEvents)
        .where(
          sql`(${contextEvents.contextId}, ${contextEvents.revision}, ${contextEvents.seq}) in (
            select m.context_id, m.revision, m.seq from context_events m
            where ${gone}
              and not exists (select 1 from context_events x where x.context_id = m.context_id and x.type <> 'CONTEXT_DELETED')
            order by m.occurred_at limit ${left})`,
        )
        .returning({ contextId: contextEvents.contextId });
      return others.length + markers.length;
    } catch (error) {
      throw toStoreError(error);
    }
  }
}
