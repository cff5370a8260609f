/**
 * The one statement that applies a ContextChange (service/ports.ts): data-modifying CTEs, so the
 * request-key claim, the context row, its participants, the state snapshot and the events are
 * written together or not at all, without a transaction around them and in one round trip.
 *
 * Every part waits on `go` (the request key is new, or there is none) and on `ctx` (the context
 * row changed), and `ctx` changes the row only while it is still at the revision the change was
 * decided at: under READ COMMITTED an UPDATE whose row another writer changed meanwhile waits for
 * that writer, then re-checks its WHERE against the new row — so a stale decision writes nothing,
 * and the caller learns it from `applied` = 0. The final SELECT reads the prior result of a
 * request key that was taken, as far as the statement's snapshot shows it.
 *
 * Seven shapes (create, update and bump — an update of the revision's own columns alone — each with
 * or without participants, and delete), each written once at start-up.
 */
import type { ApplyOutcome, ContextChange } from "../service/ports.js";
import type { JsonValue } from "../domain/json.js";
import type { Context } from "../domain/context.js";
import { contextBumpJson, contextRowJson, eventRowJson, participantColumns, participantFromRow, participantRowJson } from "./rows.js";
import type { Row } from "./sql-client.js";

/** How long an idempotency key holds: a retry after this does the work again. */
export const REQUEST_KEY_TTL_MS = 24 * 60 * 60 * 1000;

/*
 * Parameters, the same in every shape:
 *  $1 context_id  $2 base revision  $3 context row (jsonb)  $4 shared state (jsonb, null: unchanged)
 *  $5 snapshot revision (null: none)  $6 participants inserted  $7 participants updated (jsonb arrays)
 *  $8 participant ids deleted (jsonb array)  $9 events (jsonb array)  $10 now
 *  $11 key principal (null: no key)  $12 request id  $13 method  $14 result (jsonb)  $15 keys older than this are free
 *
 * The request key: `go` lets the change through when no live key is in the statement's snapshot
 * (mplp_request_key, migrations/0004: an index lookup however small the table was when planned);
 * once the context row changed, `claim` takes the key (or an expired one over). A key committed by
 * a concurrent call after the snapshot was taken makes the claim find it and claim nothing: then
 * `guard` aborts the whole statement (SQLSTATE MP001, migrations/0003), so no change is ever
 * applied twice for one key, and the caller reads the key's result instead.
 */
const GO = `go as (
  select 1 where $11::text is null or not exists (select 1 from mplp_request_key($11::text, $12::text, $15::text::timestamptz))
)`;

const CLAIM = `claim as (
  insert into request_keys (principal, request_id, method, result, created_at)
  select $11::text, $12::text, $13::text, $14::text::jsonb, $10::text::timestamptz
  where $11::text is not null and exists (select 1 from ctx)
  on conflict (principal, request_id) do update
    set method = excluded.method, result = excluded.result, created_at = excluded.created_at
    where request_keys.created_at < $15::text::timestamptz
  returning 1
),
guard as (
  select mplp_request_key_taken() as taken
  where $11::text is not null and exists (select 1 from ctx) and not exists (select 1 from claim)
)`;

/** The SQLSTATE `guard` raises: the key was taken by a call the statement's snapshot did not see. */
export const REQUEST_KEY_TAKEN = "MP001";

// An id that exists already is a stale base like any other (no row: applied 0), not a key violation.
const CREATE_CONTEXT = `ctx as (
  insert into contexts select * from jsonb_populate_record(null::contexts, $3::text::jsonb)
  where exists (select 1 from go)
  on conflict (context_id) do nothing
  returning compact_revision, state_snapshot_revision
)`;

/**
 * The context row's compare-and-set update: `columns` (each `name = n.name`) from the row JSON in $3,
 * the shared state, its snapshot revision and the sweep as every update sets them.
 *
 * sweep_at (indexed; schema.ts) stays where it is while the new expiry is no earlier and less than a
 * tenth of the timeout (expires_at - last_activity_at) past it, so most revisions leave every index
 * alone; otherwise it becomes the expiry. It is never later than expires_at.
 */
function updateContext(columns: string): string {
  return `ctx as (
  update contexts c set
    ${columns},
    sweep_at = case
      when n.expires_at >= c.sweep_at and n.expires_at < c.sweep_at + (n.expires_at - n.last_activity_at) / 10 then c.sweep_at
      else n.expires_at
    end,
    shared_state = coalesce($4::text::jsonb, c.shared_state),
    state_snapshot_revision = greatest(c.state_snapshot_revision, n.state_snapshot_revision)
  from jsonb_populate_record(null::contexts, $3::text::jsonb) n
  where c.context_id = $1::text::uuid and c.revision = $2::bigint and exists (select 1 from go)
  returning c.compact_revision, c.state_snapshot_revision
)`;
}

const UPDATE_CONTEXT = updateContext(`name = n.name, description = n.description, type = n.type, status = n.status,
    lifecycle_stage = n.lifecycle_stage, configuration = n.configuration, access_control = n.access_control,
    metadata = n.metadata, tags = n.tags, visibility = n.visibility, participant_count = n.participant_count,
    revision = n.revision, updated_at = n.updated_at, last_activity_at = n.last_activity_at,
    expires_at = n.expires_at, terminated_at = n.terminated_at`);

// A change that moved only the columns of contextBumpJson (a join, a leave, a member's update, a
// state write) sends those and sets those: the rest of the row is as the base read it, which the
// revision check guarantees is what is stored.
const BUMP_CONTEXT = updateContext(`participant_count = n.participant_count, revision = n.revision, updated_at = n.updated_at,
    last_activity_at = n.last_activity_at, expires_at = n.expires_at`);

const DELETE_CONTEXT = `ctx as (
  delete from contexts c
  where c.context_id = $1::text::uuid and c.revision = $2::bigint and exists (select 1 from go)
  returning c.compact_revision, c.state_snapshot_revision
)`;

// The participants deleted with their context go by ON DELETE CASCADE: the delete shape has none of these.
// `changed` and `gone` name their rows as `participant_id = any(array(…))`, which the planner looks
// up in participants_pkey key by key, and check the context as `(…) is true`, which no index can
// serve, so that it does not walk the context's members instead. As a join with the JSON's rows (or
// `in (select …)`) the generic plan hash-joined them with a sequential scan of every participant of
// every context: a leave or a member's update cost grew with the whole table (an embedded remove
// 1.45 → 2.4 ms as the bench's pool gathered members).
const PARTICIPANTS = `joined as (
  insert into participants select * from jsonb_populate_recordset(null::participants, $6::text::jsonb)
  where exists (select 1 from ctx)
),
changed as (
  update participants p set
    participant_type = n.participant_type, display_name = n.display_name, status = n.status,
    roles = n.roles, capabilities = n.capabilities, metadata = n.metadata, inactive_since = n.inactive_since,
    last_activity_at = greatest(p.last_activity_at, n.last_activity_at),
    lease_expires_at = greatest(p.lease_expires_at, n.lease_expires_at)
  from jsonb_populate_recordset(null::participants, $7::text::jsonb) n
  where p.participant_id = any(array(select (x ->> 'participant_id')::uuid from jsonb_array_elements($7::text::jsonb) x))
    and (p.context_id = $1::text::uuid) is true and p.participant_id = n.participant_id and exists (select 1 from ctx)
  returning p.*
),
gone as (
  delete from participants p
  where p.participant_id = any(array(select value::uuid from jsonb_array_elements_text($8::text::jsonb)))
    and (p.context_id = $1::text::uuid) is true
    and exists (select 1 from ctx)
)`;

const SNAPSHOT = `snap as (
  insert into state_snapshots (context_id, revision, state, created_at)
  select $1::text::uuid, $5::bigint, $4::text::jsonb, $10::text::timestamptz
  where $5::bigint is not null and exists (select 1 from ctx)
  on conflict do nothing
)`;

// occurred_at comes as epoch ms (eventRowJson), the form the doorbell carries the same text in.
const EVENTS = `ev as (
  insert into context_events (context_id, revision, seq, event_id, type, actor, occurred_at, reason, payload)
  select context_id, revision, seq, event_id, type, actor, to_timestamp(occurred_at / 1000.0), reason, payload
  from jsonb_to_recordset($9::text::jsonb) as e(
    context_id uuid, revision bigint, seq integer, event_id uuid, type text, actor text, occurred_at float8, reason text, payload jsonb
  )
  where exists (select 1 from ctx)
)`;

function outcomeSelect(withParticipants: boolean): string {
  const changed = withParticipants
    ? `(select coalesce(jsonb_agg(to_jsonb(u)), '[]'::jsonb) from (select ${participantColumns("changed")} from changed) u)`
    : `'[]'::jsonb`;
  return `select
  (select count(*) from ctx)::int as applied,
  (select count(*) from guard)::int as guarded,
  (select compact_revision from ctx) as compact_revision,
  (select state_snapshot_revision from ctx) as state_snapshot_revision,
  ${changed} as changed,
  k.method as prior_method, k.result as prior_result
from (select 1) one
left join lateral (
  select * from mplp_request_key($11::text, $12::text, $15::text::timestamptz)
  where $11::text is not null and not exists (select 1 from ctx)
) k on true`;
}

/**
 * Names every parameter's type, so each shape can be prepared with the same fifteen parameters even
 * where it uses only some of them (a parameter no part mentions has no type: SQLSTATE 42P18).
 */
const TYPED = `typed as (
  select $1::text, $2::bigint, $3::text, $4::text, $5::bigint, $6::text, $7::text, $8::text, $9::text,
    $10::text, $11::text, $12::text, $13::text, $14::text, $15::text
)`;

function statement(ctx: string, withParticipants: boolean): string {
  const parts = [TYPED, GO, ctx, CLAIM, ...(withParticipants ? [PARTICIPANTS] : []), SNAPSHOT, EVENTS];
  return `with ${parts.join(",\n")}\n${outcomeSelect(withParticipants)}`;
}

/**
 * A change that writes no participant (a create, a state or context update, a transition) goes by
 * a shape without the participants' parts: Postgres starts and ends every node of a statement's
 * plan on each execution, wanted or not.
 */
const STATEMENTS = {
  create: statement(CREATE_CONTEXT, false),
  createWithParticipants: statement(CREATE_CONTEXT, true),
  update: statement(UPDATE_CONTEXT, false),
  updateWithParticipants: statement(UPDATE_CONTEXT, true),
  bump: statement(BUMP_CONTEXT, false),
  bumpWithParticipants: statement(BUMP_CONTEXT, true),
  delete: statement(DELETE_CONTEXT, false),
} as const;

/** The context's columns that contextBumpJson leaves out, as the domain holds them. */
const UNBUMPED = ["name", "description", "type", "status", "lifecycleStage", "configuration", "accessControl", "metadata", "terminatedAt"] as const;

/**
 * Whether `next` differs from `base` only in the columns of contextBumpJson. By identity: a use
 * case that leaves a field alone carries the base's own value over (`{ ...context, … }`), and one
 * that changes it makes a new one, so a false "changed" costs only the longer statement.
 */
function bumpsOnly(base: Context, next: Context): boolean {
  return UNBUMPED.every((field) => base[field] === next[field]);
}

function shapeOf(change: ContextChange): keyof typeof STATEMENTS {
  if (change.context === null) return "delete";
  const kind = change.baseRevision === 0 ? "create" : change.base !== undefined && bumpsOnly(change.base.context, change.context) ? "bump" : "update";
  const participants = (change.inserted?.length ?? 0) + (change.updated?.length ?? 0) + (change.deleted?.length ?? 0) > 0;
  return participants ? `${kind}WithParticipants` : kind;
}

const eventRows = new WeakMap<ContextChange, string>();

/**
 * `change`'s events as the JSON of their rows (eventRowJson), in order: the statement's $9 and, for
 * a small revision, what the doorbell carries to other instances (committed-events.ts) — one
 * JSON.stringify for both.
 */
export function eventRowsJson(change: ContextChange): string {
  let text = eventRows.get(change);
  if (text === undefined) {
    text = JSON.stringify(change.events.map(eventRowJson));
    eventRows.set(change, text);
  }
  return text;
}

/** The statement and parameters that apply `change`. */
export function changeStatement(change: ContextChange, now: Date): [string, unknown[]] {
  const shape = shapeOf(change);
  const state = change.sharedState === undefined ? null : (change.stateJson ?? JSON.stringify(change.sharedState));
  const key = change.request?.key;
  const context = change.context;
  const params = [
    change.contextId,
    change.baseRevision,
    context === null
      ? null
      : JSON.stringify(shape === "bump" || shape === "bumpWithParticipants" ? contextBumpJson(context) : contextRowJson(context, shape === "create" || shape === "createWithParticipants" ? change.sharedState : undefined)),
    state,
    change.snapshot === true && change.context !== null ? change.context.revision : null,
    JSON.stringify((change.inserted ?? []).map(participantRowJson)),
    JSON.stringify((change.updated ?? []).map(participantRowJson)),
    JSON.stringify(change.deleted ?? []),
    eventRowsJson(change),
    now.toISOString(),
    key?.principal ?? null,
    key?.requestId ?? null,
    key?.method ?? null,
    change.request === undefined ? null : (change.request.json ?? JSON.stringify(change.request.result)),
    new Date(now.getTime() - REQUEST_KEY_TTL_MS).toISOString(),
  ];
  return [STATEMENTS[shape], params];
}

/** What the statement's one row says happened. */
export function changeOutcome(change: ContextChange, row: Row | undefined): ApplyOutcome {
  if (row === undefined) throw new Error("the change statement returned no row");
  if (Number(row["applied"]) === 0) {
    if (change.request === undefined) return { applied: false, reason: "revision" };
    const method = row["prior_method"];
    // With a live key in the snapshot, `go` stopped the change; without one the base was stale.
    if (typeof method !== "string") return { applied: false, reason: "revision" };
    return { applied: false, reason: "request", prior: { method, result: (row["prior_result"] ?? null) as JsonValue } };
  }
  const context =
    change.context === null
      ? null
      : { ...change.context, compactRevision: Number(row["compact_revision"]), stateSnapshotRevision: Number(row["state_snapshot_revision"]) };
  return { applied: true, context, updated: (row["changed"] as Row[]).map(participantFromRow) };
}
