/**
 * The sweepers' candidate queries (SweepCandidates in ports.ts). They only find context ids: plain
 * SELECTs, no locks, each served by a partial index. The sweeper then locks each context with
 * skipLocked and checks again under the lock, so a candidate that another instance is already
 * handling, or that changed since, costs nothing and is never handled twice.
 */
import { and, eq, lte, ne, sql } from "drizzle-orm";
import type { SweepCandidates } from "../service/ports.js";
import type { AppDatabase } from "./database.js";
import { contexts, participants } from "./schema.js";
import { toStoreError } from "./sql-errors.js";

async function ids(query: Promise<readonly { contextId: string }[]>): Promise<string[]> {
  try {
    return (await query).map((r) => r.contextId);
  } catch (error) {
    throw toStoreError(error);
  }
}

/** SweepCandidates on the database (no call deadline: the sweeper bounds its own passes). */
export class PgSweepCandidates implements SweepCandidates {
  constructor(private readonly db: AppDatabase) {}

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

  /** Uses contexts_live_expires_at_idx. A null expires_at (timeout 0) never matches. */
  expiredContexts(now: Date, limit: number): Promise<string[]> {
    return ids(
      this.db
        .select({ contextId: contexts.contextId })
        .from(contexts)
        .where(and(ne(contexts.status, "TERMINATED"), lte(contexts.expiresAt, now)))
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
}
