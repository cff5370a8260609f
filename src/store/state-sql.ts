/**
 * The statements of versioned shared state beyond the change statement: what an older revision is
 * rebuilt from, a snapshot stored by the sweeper where it compacts, compaction itself, and the
 * sweeper's "kept alive" move of a context's expiry. Each is one statement.
 */
import type { SharedState, StateChangeSet } from "../domain/shared-state.js";
import type { JsonValue } from "../domain/json.js";
import type { StateHistory } from "../service/ports.js";
import { payloadFromJson, sharedStateOf } from "./rows.js";
import type { Row } from "./sql-client.js";

/**
 * The head and compaction horizon, the newest snapshot at or before $2 (one backward step in
 * state_snapshots_pkey) and the STATE_CHANGED payloads after it up to $2 (a range of
 * context_events_pkey, the other event types filtered out on the way: they are a minority of a busy
 * context's events, and an index for them alone would cost every write). One statement, one
 * snapshot of the database: a compaction cannot fall between the parts.
 */
export const STATE_HISTORY = `with s as (
  select revision, state from state_snapshots
  where context_id = $1::text::uuid and revision <= $2::bigint order by revision desc limit 1
)
select c.revision, c.compact_revision, s.revision as snapshot_revision, s.state,
  (select coalesce(jsonb_agg(e.payload order by e.revision, e.seq), '[]'::jsonb)
   from context_events e
   where e.context_id = $1::text::uuid and e.type = 'STATE_CHANGED' and e.revision > s.revision and e.revision <= $2::bigint) as changes
from contexts c left join s on true
where c.context_id = $1::text::uuid`;

export function stateHistoryFromRow(row: Row | undefined): StateHistory | null {
  if (row === undefined) return null;
  const changes: StateChangeSet[] = [];
  for (const payload of row["changes"] as JsonValue[]) {
    const decoded = payloadFromJson(payload);
    if (decoded.kind === "state") changes.push(decoded.state);
  }
  const snapshotRevision = row["snapshot_revision"];
  return {
    revision: Number(row["revision"]),
    compactRevision: Number(row["compact_revision"]),
    snapshot: snapshotRevision === null ? null : { revision: Number(snapshotRevision), state: row["state"] as SharedState },
    changes,
  };
}

/** Saving the same revision twice keeps the first row: the state at a revision is a fact. */
export const INSERT_SNAPSHOT = `insert into state_snapshots (context_id, revision, state, created_at)
values ($1::text::uuid, $2::bigint, $3::text::jsonb, $4::text::timestamptz) on conflict do nothing`;

export function snapshotParams(contextId: string, revision: number, state: SharedState, now: Date): unknown[] {
  return [contextId, revision, JSON.stringify(sharedStateOf(state)), now.toISOString()];
}

/**
 * Drops the events up to $2 and the snapshots no longer needed as a replay base (older than the
 * newest one at or before $2; with none, the max is null and nothing goes), and records
 * compact_revision = $2 — in the caller's transaction, which holds the context's row lock, so
 * readers see all of it or none.
 */
export const COMPACT = `with ev as (
  delete from context_events where context_id = $1::text::uuid and revision <= $2::bigint
),
sn as (
  delete from state_snapshots s where s.context_id = $1::text::uuid and s.revision < (
    select max(revision) from state_snapshots where context_id = $1::text::uuid and revision <= $2::bigint)
),
c as (update contexts set compact_revision = $2::bigint where context_id = $1::text::uuid returning 1)
select count(*)::int as updated from c`;

/**
 * A live lease keeps its context alive: last activity and expiry move on, without a revision; the
 * sweep comes at the new expiry.
 */
export const KEEP_ALIVE = `update contexts set last_activity_at = $2::text::timestamptz, expires_at = $3::text::timestamptz,
  sweep_at = $3::text::timestamptz
where context_id = $1::text::uuid`;
