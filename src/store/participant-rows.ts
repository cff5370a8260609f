/**
 * Rows of the participants table ⇄ the domain's Participant. Arrays are copied on the way in, so
 * a caller's later mutation cannot change what a pending insert writes.
 */
import type { Participant, ParticipantStatus, ParticipantType } from "../domain/participant.js";
import type { participants } from "./schema.js";

export type ParticipantRow = typeof participants.$inferSelect;
export type ParticipantInsert = typeof participants.$inferInsert;

/**
 * The columns updateParticipant writes: all but participant_id, context_id, agent_id and
 * joined_at, which never change after the join.
 */
export function participantUpdateValues(p: Participant) {
  return {
    participantType: p.participantType,
    displayName: p.displayName,
    status: p.status,
    roles: [...p.roles],
    capabilities: [...p.capabilities],
    metadata: p.metadata,
    lastActivityAt: p.lastActivityAt,
    leaseExpiresAt: p.leaseExpiresAt,
    inactiveSince: p.inactiveSince,
  } satisfies Partial<ParticipantInsert>;
}

/** A full row for a new participant. */
export function participantInsertValues(p: Participant): ParticipantInsert {
  return {
    ...participantUpdateValues(p),
    participantId: p.participantId,
    contextId: p.contextId,
    agentId: p.agentId,
    joinedAt: p.joinedAt,
  };
}

export function participantFromRow(row: ParticipantRow): Participant {
  return {
    participantId: row.participantId,
    contextId: row.contextId,
    agentId: row.agentId,
    participantType: row.participantType as ParticipantType,
    displayName: row.displayName,
    status: row.status as ParticipantStatus,
    roles: row.roles,
    capabilities: row.capabilities,
    metadata: row.metadata,
    joinedAt: row.joinedAt,
    lastActivityAt: row.lastActivityAt,
    leaseExpiresAt: row.leaseExpiresAt,
    inactiveSince: row.inactiveSince,
  };
}
