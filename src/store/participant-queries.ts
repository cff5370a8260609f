/**
 * The participants table's SQL, as functions of an Executor: the transaction (PgContextTx) and
 * the plain reads and the lease renewal (PgContextStore) share them. Every statement is bounded
 * by the context id, so each runs on an index led by context_id.
 *
 * Locking: whoever changes a context's membership holds that context's row lock first (see
 * ports.ts), so FOR UPDATE here only orders against renewLease, which takes no context lock. Under
 * READ COMMITTED a row updated by a committed renewal meanwhile has its WHERE re-evaluated before
 * it is returned, so a lease renewed in the meantime is not reported as lapsed.
 */
import { and, asc, count, eq, inArray, lte, max, gt, sql, type SQL } from "drizzle-orm";
import { AppError } from "../domain/app-error.js";
import type { Participant, ParticipantFilter } from "../domain/participant.js";
import type { LeaseRenewal, ParticipantListQuery, ParticipantListResult } from "../service/ports.js";
import type { Executor } from "./executor.js";
import { participantFromRow, participantInsertValues, participantUpdateValues } from "./participant-rows.js";
import { participants } from "./schema.js";

function one(rows: readonly (typeof participants.$inferSelect)[]): Participant | null {
  const row = rows[0];
  return row === undefined ? null : participantFromRow(row);
}

/** A participant of the context, optionally locked FOR UPDATE; null when absent or elsewhere. */
export async function selectParticipant(
  q: Executor,
  contextId: string,
  participantId: string,
  options: { readonly lock: boolean },
): Promise<Participant | null> {
  const query = q
    .select()
    .from(participants)
    .where(and(eq(participants.contextId, contextId), eq(participants.participantId, participantId)));
  return one(options.lock ? await query.for("update") : await query);
}

/** The membership of `agentId` in the context (served by the unique (context_id, agent_id) index). */
export async function selectMember(q: Executor, contextId: string, agentId: string): Promise<Participant | null> {
  return one(
    await q
      .select()
      .from(participants)
      .where(and(eq(participants.contextId, contextId), eq(participants.agentId, agentId))),
  );
}

/** One multi-row INSERT: a batch joins whole or not at all. */
export async function insertParticipantRows(q: Executor, list: readonly Participant[]): Promise<void> {
  if (list.length === 0) return;
  await q.insert(participants).values(list.map(participantInsertValues));
}

/** Writes a participant's mutable columns; PARTICIPANT_NOT_FOUND when its row is not there. */
export async function updateParticipantRow(q: Executor, p: Participant): Promise<void> {
  const updated = await q
    .update(participants)
    .set(participantUpdateValues(p))
    .where(and(eq(participants.contextId, p.contextId), eq(participants.participantId, p.participantId)))
    .returning({ participantId: participants.participantId });
  // The caller locked the participant (or its context) first, so this means a bug: say so loudly.
  if (updated.length === 0) {
    throw new AppError("PARTICIPANT_NOT_FOUND", `participant ${p.participantId} not found`, {
      metadata: { context_id: p.contextId, participant_id: p.participantId },
    });
  }
}

export async function deleteParticipantRows(q: Executor, contextId: string, ids: readonly string[]): Promise<void> {
  if (ids.length === 0) return;
  await q
    .delete(participants)
    .where(and(eq(participants.contextId, contextId), inArray(participants.participantId, [...ids])));
}

/**
 * Members in `status` whose `due` time is at or before `bound`, earliest first, locked: what the
 * sweeper takes from one context it already holds the lock of.
 */
async function selectDue(
  q: Executor,
  contextId: string,
  status: Participant["status"],
  due: typeof participants.leaseExpiresAt | typeof participants.inactiveSince,
  bound: Date,
  limit: number,
): Promise<Participant[]> {
  const rows = await q
    .select()
    .from(participants)
    .where(and(eq(participants.contextId, contextId), eq(participants.status, status), lte(due, bound)))
    .orderBy(asc(due), asc(participants.participantId))
    .limit(limit)
    .for("update");
  return rows.map(participantFromRow);
}

/** ACTIVE members whose lease lapsed by `now`, oldest lease first, locked. */
export function selectLapsed(q: Executor, contextId: string, now: Date, limit: number): Promise<Participant[]> {
  return selectDue(q, contextId, "ACTIVE", participants.leaseExpiresAt, now, limit);
}

/** INACTIVE members inactive since `cutoff` or earlier, longest inactive first, locked. */
export function selectExpired(q: Executor, contextId: string, cutoff: Date, limit: number): Promise<Participant[]> {
  return selectDue(q, contextId, "INACTIVE", participants.inactiveSince, cutoff, limit);
}

/** The latest last_activity_at among members whose lease runs past `now`; null when none does. */
export async function selectLatestPresence(q: Executor, contextId: string, now: Date): Promise<Date | null> {
  const rows = await q
    .select({ latest: max(participants.lastActivityAt) })
    .from(participants)
    .where(and(eq(participants.contextId, contextId), gt(participants.leaseExpiresAt, now)));
  return rows[0]?.latest ?? null;
}

function filterConditions(contextId: string, filter: ParticipantFilter): SQL[] {
  const conditions: SQL[] = [eq(participants.contextId, contextId)];
  if (filter.status !== undefined) conditions.push(eq(participants.status, filter.status));
  if (filter.participantType !== undefined) conditions.push(eq(participants.participantType, filter.participantType));
  // `@> ARRAY[x]`: containment, the array form a GIN index could serve should one ever be needed.
  if (filter.role !== undefined) conditions.push(sql`${participants.roles} @> ARRAY[${filter.role}]::text[]`);
  if (filter.capability !== undefined) {
    conditions.push(sql`${participants.capabilities} @> ARRAY[${filter.capability}]::text[]`);
  }
  return conditions;
}

/** A page of the context's participants, oldest first, and how many match the filter in all. */
export async function listParticipantRows(q: Executor, query: ParticipantListQuery): Promise<ParticipantListResult> {
  const matching = filterConditions(query.contextId, query.filter);
  // `(joined_at, participant_id) > (…)`: the oldest-first keyset, matched by
  // participants_context_joined_at_id_idx after its context_id equality.
  const after =
    query.after === undefined
      ? []
      : [
          sql`(${participants.joinedAt}, ${participants.participantId}) > (${query.after.joinedAt.toISOString()}::timestamptz, ${query.after.participantId}::uuid)`,
        ];
  const page = q
    .select()
    .from(participants)
    .where(and(...matching, ...after))
    .orderBy(asc(participants.joinedAt), asc(participants.participantId))
    .limit(query.limit);
  const total = q.select({ n: count() }).from(participants).where(and(...matching));
  // Outside a transaction postgres.js runs the two on two connections at once; PGlite queues them.
  const [rows, totals] = await Promise.all([page, total]);
  return { participants: rows.map(participantFromRow), totalSize: totals[0]?.n ?? 0 };
}

/**
 * Heartbeat's fast path, one statement: only an ACTIVE participant of this agent in this context
 * is renewed. A concurrent sweeper that locked the row first makes this wait; once it commits,
 * the WHERE is evaluated again and an INACTIVE (or deleted) row is not renewed (null).
 */
export async function renewLeaseRow(q: Executor, renewal: LeaseRenewal): Promise<Participant | null> {
  return one(
    await q
      .update(participants)
      .set({ leaseExpiresAt: renewal.leaseExpiresAt, lastActivityAt: renewal.now })
      .where(
        and(
          eq(participants.contextId, renewal.contextId),
          eq(participants.participantId, renewal.participantId),
          eq(participants.agentId, renewal.agentId),
          eq(participants.status, "ACTIVE"),
        ),
      )
      .returning(),
  );
}
