/**
 * The participants' statements, each bounded by the context id, so each runs on an index led by
 * context_id: a member, a participant, a page of ListParticipants with its total, the lease
 * renewal, and what the sweepers lock in a context they hold.
 *
 * Locking: whoever changes a context's membership holds that context's row lock (or applies its
 * change only while the context is at the revision it decided on), so FOR UPDATE here only orders
 * the sweepers against the lease renewal, which takes no context lock. Under READ COMMITTED a row
 * updated by a committed renewal meanwhile has its WHERE re-evaluated before it is returned, so a
 * lease renewed in the meantime is not reported as lapsed.
 */
import type { LeaseRenewal, ParticipantListQuery } from "../service/ports.js";
import { participantColumns } from "./rows.js";

const COLUMNS = participantColumns("p");

export const FIND_MEMBER = `select ${COLUMNS} from participants p where p.context_id = $1::text::uuid and p.agent_id = $2::text`;
export const GET_PARTICIPANT = `select ${COLUMNS} from participants p where p.context_id = $1::text::uuid and p.participant_id = $2::text::uuid`;

// Absent filters are null parameters: the page runs on participants_context_joined_at_id_idx
// whatever they are, so one text serves every filter. Arrays use `@> ARRAY[x]` (containment).
const MATCHING = `p.context_id = $1::text::uuid
  and ($2::text is null or p.status = $2::text)
  and ($3::text is null or p.participant_type = $3::text)
  and ($4::text is null or p.roles @> array[$4::text])
  and ($5::text is null or p.capabilities @> array[$5::text])`;

function listText(after: boolean): string {
  // `(joined_at, participant_id) > (…)`: the oldest-first keyset, on the index after context_id.
  const keyset = after ? `\n  and (p.joined_at, p.participant_id) > ($7::text::timestamptz, $8::text::uuid)` : "";
  return `select t.total, page.* from (select (select count(*) from participants p where ${MATCHING})::int as total) t
left join lateral (
  select ${COLUMNS} from participants p
  where ${MATCHING}${keyset}
  order by p.joined_at, p.participant_id limit $6::int
) page on true`;
}

const LIST_FIRST = listText(false);
const LIST_AFTER = listText(true);

/** A page of the context's participants, oldest first, with how many match the filter in all. */
export function listParticipantsStatement(query: ParticipantListQuery): [string, unknown[]] {
  const f = query.filter;
  const params: unknown[] = [query.contextId, f.status ?? null, f.participantType ?? null, f.role ?? null, f.capability ?? null, query.limit];
  if (query.after === undefined) return [LIST_FIRST, params];
  return [LIST_AFTER, [...params, query.after.joinedAt.toISOString(), query.after.participantId]];
}

/**
 * Heartbeat, one statement: only an ACTIVE participant (of this agent, when given) in this context
 * is renewed. A concurrent sweeper that locked the row first makes this wait; once it commits, the
 * WHERE is evaluated again and an INACTIVE (or deleted) row is not renewed (no row).
 */
export const RENEW_LEASE = `update participants p
set lease_expires_at = greatest(p.lease_expires_at, $4::text::timestamptz), last_activity_at = greatest(p.last_activity_at, $3::text::timestamptz)
where p.context_id = $1::text::uuid and p.participant_id = $2::text::uuid
  and ($5::text is null or p.agent_id = $5::text) and p.status = 'ACTIVE'
returning ${COLUMNS}`;

export function renewLeaseParams(r: LeaseRenewal): unknown[] {
  return [r.contextId, r.participantId, r.now.toISOString(), r.leaseExpiresAt.toISOString(), r.agentId ?? null];
}

/** ACTIVE members whose lease lapsed by $2, oldest lease first, locked. */
export const LAPSED = `select ${COLUMNS} from participants p
where p.context_id = $1::text::uuid and p.status = 'ACTIVE' and p.lease_expires_at <= $2::text::timestamptz
order by p.lease_expires_at, p.participant_id limit $3::int
for update`;

/** INACTIVE members inactive since $2 or earlier, longest inactive first, locked. */
export const EXPIRED = `select ${COLUMNS} from participants p
where p.context_id = $1::text::uuid and p.status = 'INACTIVE' and p.inactive_since <= $2::text::timestamptz
order by p.inactive_since, p.participant_id limit $3::int
for update`;

/** The latest last_activity_at among members whose lease runs past $2 (null when none does). */
export const LATEST_PRESENCE = `select (extract(epoch from max(p.last_activity_at)) * 1000)::float8 as latest
from participants p where p.context_id = $1::text::uuid and p.lease_expires_at > $2::text::timestamptz`;
