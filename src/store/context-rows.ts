/**
 * Rows of the contexts and context_events tables ⇄ domain objects (participants: participant-rows.ts). The jsonb columns hold exactly
 * the domain's sub-objects (picked field by field on the way in, so nothing stray is stored); the
 * owner, tags and visibility are also columns of their own, for the queries that filter on them.
 */
import { count, getTableColumns, sql, type SQL } from "drizzle-orm";
import type {
  AccessControl,
  Context,
  ContextConfiguration,
  ContextMetadata,
  ContextStatus,
  ContextType,
  LifecycleStage,
} from "../domain/context.js";
import { contextFromJson, contextToJson, participantFromJson, participantToJson } from "../domain/context-codec.js";
import type { ContextEvent, ContextEventType, EventPayload } from "../domain/event.js";
import type { JsonObject, JsonValue } from "../domain/json.js";
import type { SharedState, StateChange, StateChangeSet } from "../domain/shared-state.js";
import type { ContextListQuery } from "../service/ports.js";
import type { Executor } from "./executor.js";
import { contexts, type contextEvents } from "./schema.js";

export type ContextRow = typeof contexts.$inferSelect;
export type ContextInsert = typeof contexts.$inferInsert;
export type EventRow = typeof contextEvents.$inferSelect;

/** Every column of contexts but shared_state, which can be large and is read only when asked for. */
export const contextColumnsWithoutState = (() => {
  const { sharedState: _sharedState, ...rest } = getTableColumns(contexts);
  return rest;
})();

/** Every column of contexts. */
export const contextColumnsWithState = getTableColumns(contexts);

/**
 * ListContexts' total_size: the contexts matching `where`, counted as far as `how` asks (see
 * ContextListQuery.count). A capped count is `count(*)` over a LIMITed subquery, so Postgres stops
 * scanning at upTo + 1 matches: on a large table the first page costs at most that many rows
 * instead of every match, and pages after it cost nothing (the service carries the total).
 */
export async function countContexts(q: Executor, where: SQL | undefined, how: ContextListQuery["count"]): Promise<number | undefined> {
  if (how === false) return undefined;
  if (how === undefined) {
    const [all] = await q.select({ n: count() }).from(contexts).where(where);
    return all?.n ?? 0;
  }
  const upTo = Math.max(0, Math.floor(how.upTo));
  const matching = q.select({ one: sql`1`.as("one") }).from(contexts).where(where).limit(upTo + 1).as("matching");
  const [capped] = await q.select({ n: count() }).from(matching);
  return capped?.n ?? 0;
}

function configurationOf(c: ContextConfiguration): ContextConfiguration {
  return {
    maxParticipants: c.maxParticipants,
    maxSessions: c.maxSessions,
    timeoutMs: c.timeoutMs,
    persistenceLevel: c.persistenceLevel,
    isolationLevel: c.isolationLevel,
    autoCleanup: c.autoCleanup,
    cleanupDelayMs: c.cleanupDelayMs,
  };
}

function accessControlOf(a: AccessControl): Omit<AccessControl, "owner"> {
  return {
    visibility: a.visibility,
    joinPolicy: a.joinPolicy,
    defaultRole: a.defaultRole,
    requiredCapabilities: [...a.requiredCapabilities],
    requiredRoles: [...a.requiredRoles],
  };
}

function metadataOf(m: ContextMetadata): ContextMetadata {
  return { tags: [...m.tags], category: m.category, priority: m.priority, customData: m.customData };
}

/** The shared state's four parts, picked so nothing stray is stored (also used for snapshots). */
export function sharedStateOf(s: SharedState): SharedState {
  return { variables: s.variables, resources: s.resources, dependencies: s.dependencies, goals: s.goals };
}

/** The columns UpdateContext writes: all but context_id, shared_state and created_at. */
export function contextUpdateValues(context: Context) {
  return {
    owner: context.accessControl.owner,
    name: context.name,
    description: context.description,
    type: context.type,
    status: context.status,
    lifecycleStage: context.lifecycleStage,
    configuration: configurationOf(context.configuration),
    accessControl: accessControlOf(context.accessControl),
    metadata: metadataOf(context.metadata),
    tags: [...context.metadata.tags],
    visibility: context.accessControl.visibility,
    participantCount: context.participantCount,
    sessionCount: context.sessionCount,
    revision: context.revision,
    updatedAt: context.updatedAt,
    lastActivityAt: context.lastActivityAt,
    expiresAt: context.expiresAt,
    // The service owns terminated_at (the cleanup delay counts from it): written as it comes.
    terminatedAt: context.terminatedAt,
    // Retention bookkeeping the service keeps (compaction, snapshots): written as it comes too.
    compactRevision: context.compactRevision,
    stateSnapshotRevision: context.stateSnapshotRevision,
  } satisfies Partial<ContextInsert>;
}

/** A full row for a new context. */
export function contextInsertValues(context: Context & { readonly sharedState: SharedState }): ContextInsert {
  return {
    ...contextUpdateValues(context),
    contextId: context.contextId,
    sharedState: sharedStateOf(context.sharedState),
    createdAt: context.createdAt,
  };
}

/** A row (with or without shared_state) as the domain's Context; sharedState only when present. */
export function contextFromRow(row: Omit<ContextRow, "sharedState"> & { sharedState?: SharedState }): Context {
  const context: Context = {
    contextId: row.contextId,
    name: row.name,
    description: row.description,
    type: row.type as ContextType,
    status: row.status as ContextStatus,
    lifecycleStage: row.lifecycleStage as LifecycleStage,
    configuration: row.configuration,
    accessControl: { owner: row.owner, ...row.accessControl },
    metadata: row.metadata,
    participantCount: row.participantCount,
    sessionCount: row.sessionCount,
    revision: row.revision,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
    lastActivityAt: row.lastActivityAt,
    expiresAt: row.expiresAt,
    terminatedAt: row.terminatedAt,
    compactRevision: row.compactRevision,
    stateSnapshotRevision: row.stateSnapshotRevision,
  };
  return row.sharedState === undefined ? context : { ...context, sharedState: row.sharedState };
}

/** An event's payload as stored in jsonb: dates as ISO strings, tagged by kind. */
function payloadToJson(payload: EventPayload): JsonObject {
  switch (payload.kind) {
    case "context":
      return { kind: "context", context: contextToJson(payload.context) };
    case "participant":
      return { kind: "participant", participant: participantToJson(payload.participant) };
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

function payloadFromJson(json: JsonValue): EventPayload {
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

export function eventInsertValues(event: ContextEvent): typeof contextEvents.$inferInsert {
  return {
    contextId: event.contextId,
    revision: event.revision,
    seq: event.seq,
    eventId: event.eventId,
    type: event.type,
    actor: event.actor,
    occurredAt: event.occurredAt,
    reason: event.reason,
    payload: payloadToJson(event.payload),
  };
}

export function eventFromRow(row: EventRow): ContextEvent {
  return {
    contextId: row.contextId,
    revision: row.revision,
    seq: row.seq,
    eventId: row.eventId,
    type: row.type as ContextEventType,
    actor: row.actor,
    occurredAt: row.occurredAt,
    reason: row.reason,
    payload: payloadFromJson(row.payload),
  };
}
