/**
 * Rows ⇄ domain objects, for the SQL the store sends itself (sql-client.ts). Reads select every
 * timestamp as epoch milliseconds (a float8: both drivers return a number, where they would return
 * a Date on PGlite and a string on postgres.js) and bigints are read with Number(); the same field
 * lists build the JSON objects of participants and contexts aggregated into one column,
 * so one mapper reads both. Writes go the other way as one JSON document per row, keyed by column
 * name, which the statements expand with jsonb_populate_record(set): one parameter, one
 * JSON.stringify, whatever the number of columns.
 */
import type {
  AccessControl,
  Context,
  ContextConfiguration,
  ContextMetadata,
  ContextStatus,
  ContextType,
  LifecycleStage,
} from "../domain/context.js";
import { contextFromJson, participantFromJson } from "../domain/context-codec.js";
import type { ContextEvent, ContextEventType, EventPayload } from "../domain/event.js";
import type { JsonObject, JsonValue } from "../domain/json.js";
import type { Participant, ParticipantStatus, ParticipantType } from "../domain/participant.js";
import type { SharedState, StateChange, StateChangeSet } from "../domain/shared-state.js";
import type { Row } from "./sql-client.js";

/** `alias` → SQL expression over the table alias `t`. Timestamps as epoch ms. */
type Fields = ReadonlyArray<readonly [alias: string, expression: (t: string) => string]>;

const column = (name: string) => (t: string) => `${t}.${name}`;
const millis = (name: string) => (t: string) => `(extract(epoch from ${t}.${name}) * 1000)::float8`;

const CONTEXT_FIELDS: Fields = [
  ["context_id", column("context_id")],
  ["owner", column("owner")],
  ["name", column("name")],
  ["description", column("description")],
  ["type", column("type")],
  ["status", column("status")],
  ["lifecycle_stage", column("lifecycle_stage")],
  ["configuration", column("configuration")],
  ["access_control", column("access_control")],
  ["metadata", column("metadata")],
  ["participant_count", column("participant_count")],
  ["session_count", column("session_count")],
  ["revision", column("revision")],
  ["created_at", millis("created_at")],
  ["updated_at", millis("updated_at")],
  ["last_activity_at", millis("last_activity_at")],
  ["expires_at", millis("expires_at")],
  ["terminated_at", millis("terminated_at")],
  ["compact_revision", column("compact_revision")],
  ["state_snapshot_revision", column("state_snapshot_revision")],
];

const PARTICIPANT_FIELDS: Fields = [
  ["participant_id", column("participant_id")],
  ["context_id", column("context_id")],
  ["agent_id", column("agent_id")],
  ["participant_type", column("participant_type")],
  ["display_name", column("display_name")],
  ["status", column("status")],
  ["roles", column("roles")],
  ["capabilities", column("capabilities")],
  ["metadata", column("metadata")],
  ["joined_at", millis("joined_at")],
  ["last_activity_at", millis("last_activity_at")],
  ["lease_expires_at", millis("lease_expires_at")],
  ["inactive_since", millis("inactive_since")],
];

const EVENT_FIELDS: Fields = [
  ["context_id", column("context_id")],
  ["revision", column("revision")],
  ["seq", column("seq")],
  ["event_id", column("event_id")],
  ["type", column("type")],
  ["actor", column("actor")],
  ["occurred_at", millis("occurred_at")],
  ["reason", column("reason")],
  ["payload", column("payload")],
];

function selectList(fields: Fields, t: string): string {
  return fields.map(([alias, expression]) => `${expression(t)} as ${alias}`).join(", ");
}

/** The select list of a context row (table alias `t`), shared_state apart. */
export const contextColumns = (t: string): string => selectList(CONTEXT_FIELDS, t);
/** The select list of a participant row (table alias `t`). */
export const participantColumns = (t: string): string => selectList(PARTICIPANT_FIELDS, t);
/** The select list of an event row (table alias `t`). */
export const eventColumns = (t: string): string => selectList(EVENT_FIELDS, t);
/**
 * A context row (alias `t`) as one JSON object with the same keys and values as contextColumns: a
 * page of them aggregated into one column reaches the driver as one field to parse, not twenty per
 * row (PGlite's protocol parser copied and decoded each field apart: a quarter of an embedded
 * ListContexts' CPU). `json`, not `jsonb`: built and printed as is, never re-parsed.
 */
export const contextJson = (t: string): string =>
  `json_build_object(${CONTEXT_FIELDS.map(([alias, expression]) => `'${alias}', ${expression(t)}`).join(", ")})`;
/** A participant row (alias `t`) as one JSON object with the same keys and values as participantColumns. */
export const participantJson = (t: string): string =>
  `jsonb_build_object(${PARTICIPANT_FIELDS.map(([alias, expression]) => `'${alias}', ${expression(t)}`).join(", ")})`;

function date(value: unknown): Date {
  return new Date(Number(value));
}

function dateOrNull(value: unknown): Date | null {
  return value === null || value === undefined ? null : new Date(Number(value));
}

/** A context row (contextColumns, plus shared_state when selected). */
export function contextFromRow(r: Row): Context {
  const accessControl = r["access_control"] as Omit<AccessControl, "owner">;
  const context: Context = {
    contextId: r["context_id"] as string,
    name: r["name"] as string,
    description: r["description"] as string,
    type: r["type"] as ContextType,
    status: r["status"] as ContextStatus,
    lifecycleStage: r["lifecycle_stage"] as LifecycleStage,
    configuration: r["configuration"] as ContextConfiguration,
    accessControl: { owner: r["owner"] as string, ...accessControl },
    metadata: r["metadata"] as ContextMetadata,
    participantCount: Number(r["participant_count"]),
    sessionCount: Number(r["session_count"]),
    revision: Number(r["revision"]),
    createdAt: date(r["created_at"]),
    updatedAt: date(r["updated_at"]),
    lastActivityAt: date(r["last_activity_at"]),
    expiresAt: dateOrNull(r["expires_at"]),
    terminatedAt: dateOrNull(r["terminated_at"]),
    compactRevision: Number(r["compact_revision"]),
    stateSnapshotRevision: Number(r["state_snapshot_revision"]),
  };
  const state = r["shared_state"];
  return state === undefined ? context : { ...context, sharedState: state as SharedState };
}

/** A participant row, or one object of participantJson. */
export function participantFromRow(r: Row): Participant {
  return {
    participantId: r["participant_id"] as string,
    contextId: r["context_id"] as string,
    agentId: r["agent_id"] as string,
    participantType: r["participant_type"] as ParticipantType,
    displayName: r["display_name"] as string,
    status: r["status"] as ParticipantStatus,
    roles: r["roles"] as string[],
    capabilities: r["capabilities"] as string[],
    metadata: r["metadata"] as JsonObject,
    joinedAt: date(r["joined_at"]),
    lastActivityAt: date(r["last_activity_at"]),
    leaseExpiresAt: date(r["lease_expires_at"]),
    inactiveSince: dateOrNull(r["inactive_since"]),
  };
}

/** The shared state's four parts, picked so nothing stray is stored (also used for snapshots). */
export function sharedStateOf(s: SharedState): SharedState {
  return { variables: s.variables, resources: s.resources, dependencies: s.dependencies, goals: s.goals };
}

/**
 * A context as the JSON document of its row (jsonb_populate_record(null::contexts, …)): the jsonb
 * columns hold exactly the domain's sub-objects, picked field by field so nothing stray is stored;
 * owner, tags and visibility are columns of their own too, for the queries that filter on them.
 * shared_state only when given (an insert); an update writes it apart, when it changed.
 */
export function contextRowJson(context: Context, sharedState?: SharedState): Record<string, unknown> {
  const c = context.configuration;
  const a = context.accessControl;
  const m = context.metadata;
  return {
    context_id: context.contextId,
    owner: a.owner,
    name: context.name,
    description: context.description,
    type: context.type,
    status: context.status,
    lifecycle_stage: context.lifecycleStage,
    configuration: {
      maxParticipants: c.maxParticipants,
      maxSessions: c.maxSessions,
      timeoutMs: c.timeoutMs,
      persistenceLevel: c.persistenceLevel,
      isolationLevel: c.isolationLevel,
      autoCleanup: c.autoCleanup,
      cleanupDelayMs: c.cleanupDelayMs,
    },
    access_control: {
      visibility: a.visibility,
      joinPolicy: a.joinPolicy,
      defaultRole: a.defaultRole,
      requiredCapabilities: a.requiredCapabilities,
      requiredRoles: a.requiredRoles,
    },
    metadata: { tags: m.tags, category: m.category, priority: m.priority, customData: m.customData },
    tags: m.tags,
    ...(sharedState === undefined ? {} : { shared_state: sharedStateOf(sharedState) }),
    visibility: a.visibility,
    participant_count: context.participantCount,
    session_count: context.sessionCount,
    revision: context.revision,
    created_at: context.createdAt,
    updated_at: context.updatedAt,
    last_activity_at: context.lastActivityAt,
    expires_at: context.expiresAt,
    // A new row's sweep is its expiry; an update keeps or moves it (change-sql.ts updateContext).
    sweep_at: context.expiresAt,
    terminated_at: context.terminatedAt,
    compact_revision: context.compactRevision,
    state_snapshot_revision: context.stateSnapshotRevision,
  };
}

/**
 * The columns of a context row that a change of its members or its shared state alone moves
 * (service/changes.ts nextRevision, plus participant_count), as contextRowJson writes them.
 */
export function contextBumpJson(context: Context): Record<string, unknown> {
  return {
    participant_count: context.participantCount,
    revision: context.revision,
    updated_at: context.updatedAt,
    last_activity_at: context.lastActivityAt,
    expires_at: context.expiresAt,
    state_snapshot_revision: context.stateSnapshotRevision,
  };
}

/** A participant as the JSON document of its row. */
export function participantRowJson(p: Participant): Record<string, unknown> {
  return {
    participant_id: p.participantId,
    context_id: p.contextId,
    agent_id: p.agentId,
    participant_type: p.participantType,
    display_name: p.displayName,
    status: p.status,
    roles: p.roles,
    capabilities: p.capabilities,
    metadata: p.metadata,
    joined_at: p.joinedAt,
    last_activity_at: p.lastActivityAt,
    lease_expires_at: p.leaseExpiresAt,
    inactive_since: p.inactiveSince,
  };
}

/**
 * An event's payload as the document JSON.stringify turns into its jsonb: tagged by kind, the
 * context or participant as it is (JSON.stringify writes its dates as ISO strings). Not a
 * JsonObject — it may hold Dates — so only for stringifying: a round trip through JSON.parse here
 * cost more than the rest of a write's mapping.
 */
function payloadDocument(payload: EventPayload): Record<string, unknown> {
  switch (payload.kind) {
    case "context":
      return { kind: "context", context: payload.context };
    case "participant":
      return { kind: "participant", participant: payload.participant };
    case "state":
      return { kind: "state", state: stateChangeSetToJson(payload.state) };
  }
}

/**
 * A STATE_CHANGED payload as jsonb: its JSON values as they are (no dates inside), fields picked
 * so the stored shape is exactly the domain's. Replaying it must reproduce the state and its
 * checksum, so nothing is normalised here.
 */
function stateChangeSetToJson(set: StateChangeSet): JsonObject {
  const changes = set.changes.map((c: StateChange): JsonObject =>
    c.operation === "SET" ? { operation: "SET", path: c.path, value: c.value } : { operation: "DELETE", path: c.path },
  );
  const replace: Record<string, unknown> = {};
  if (set.replace.resources !== undefined) replace["resources"] = set.replace.resources;
  if (set.replace.dependencies !== undefined) replace["dependencies"] = set.replace.dependencies;
  if (set.replace.goals !== undefined) replace["goals"] = set.replace.goals;
  // Resources, dependencies and goals are plain JSON data typed as interfaces (no index signature).
  return { changes, replace: replace as JsonObject, checksum: set.checksum };
}

/** The stored STATE_CHANGED payload back; its shape is checked, its values trusted (only this code writes them). */
function stateChangeSetFromJson(json: JsonObject): StateChangeSet | null {
  const { changes, replace, checksum } = json;
  if (!Array.isArray(changes) || !isObject(replace) || typeof checksum !== "string") return null;
  return {
    changes: changes as unknown as StateChange[],
    replace: replace as unknown as StateChangeSet["replace"],
    checksum,
  };
}

function isObject(value: JsonValue | undefined): value is JsonObject {
  return value !== null && value !== undefined && typeof value === "object" && !Array.isArray(value);
}

export function payloadFromJson(json: JsonValue): EventPayload {
  if (isObject(json)) {
    const context = json["context"];
    if (json["kind"] === "context" && isObject(context)) return { kind: "context", context: contextFromJson(context) };
    const participant = json["participant"];
    if (json["kind"] === "participant" && isObject(participant)) {
      return { kind: "participant", participant: participantFromJson(participant) };
    }
    const state = json["state"];
    if (json["kind"] === "state" && isObject(state)) {
      const set = stateChangeSetFromJson(state);
      if (set !== null) return { kind: "state", state: set };
    }
  }
  // Only this code writes the column: an unknown shape means a newer writer or corruption.
  throw new Error("context_events.payload holds an unknown payload shape");
}

/**
 * An event as the document of its row, for JSON.stringify: occurred_at as epoch ms (as reads select
 * it, so eventFromRow reads this back too), the payload's dates as Dates.
 */
export function eventRowJson(event: ContextEvent): Record<string, unknown> {
  return {
    context_id: event.contextId,
    revision: event.revision,
    seq: event.seq,
    event_id: event.eventId,
    type: event.type,
    actor: event.actor,
    occurred_at: event.occurredAt.getTime(),
    reason: event.reason,
    payload: payloadDocument(event.payload),
  };
}

/** An event row (eventColumns). */
export function eventFromRow(r: Row): ContextEvent {
  return {
    contextId: r["context_id"] as string,
    revision: Number(r["revision"]),
    seq: Number(r["seq"]),
    eventId: r["event_id"] as string,
    type: r["type"] as ContextEventType,
    actor: r["actor"] as string,
    occurredAt: date(r["occurred_at"]),
    reason: r["reason"] as string,
    payload: payloadFromJson(r["payload"] as JsonValue),
  };
}
