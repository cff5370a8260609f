/**
 * The database schema, in drizzle's pg-core terms. drizzle-kit turns it into the SQL under
 * migrations/ (`npm run db:generate`); both Postgres 15 and PGlite (Postgres 18) run that SQL, so
 * keep to features both have.
 *
 * Enum-like columns hold the domain's literal values ("ACTIVE", "PUBLIC", …) as text rather than
 * Postgres enums: adding a value then needs no migration, and the domain validates them anyway.
 */
import { sql } from "drizzle-orm";
import {
  bigint,
  foreignKey,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
  uuid,
} from "drizzle-orm/pg-core";
import type { ContextConfiguration, ContextMetadata, AccessControl } from "../domain/context.js";
import type { JsonObject, JsonValue } from "../domain/json.js";
import type { SharedState } from "../domain/shared-state.js";

/**
 * Every timestamp: timestamptz with millisecond precision, read as a JS Date. Dates are made in
 * JS (ms precision), so what is written reads back identical and keyset cursors round-trip exactly.
 */
function timestampMs(name: string) {
  return timestamp(name, { withTimezone: true, precision: 3, mode: "date" });
}

/** Name of the partial unique index behind CONTEXT_EXISTS; sql-errors.ts matches on it. */
export const CONTEXTS_OWNER_NAME_LIVE_KEY = "contexts_owner_name_live_key";

/** One row per context. Shared state lives here too but is only read when asked for. */
export const contexts = pgTable(
  "contexts",
  {
    contextId: uuid("context_id").primaryKey(),
    owner: text("owner").notNull(),
    name: text("name").notNull(),
    description: text("description").notNull(),
    type: text("type").notNull(),
    status: text("status").notNull(),
    lifecycleStage: text("lifecycle_stage").notNull(),
    configuration: jsonb("configuration").$type<ContextConfiguration>().notNull(),
    /** The access control without `owner`, which is its own column. */
    accessControl: jsonb("access_control").$type<Omit<AccessControl, "owner">>().notNull(),
    metadata: jsonb("metadata").$type<ContextMetadata>().notNull(),
    /** A copy of metadata.tags, so the tag filter can use a GIN index. */
    tags: text("tags").array().notNull(),
    sharedState: jsonb("shared_state").$type<SharedState>().notNull(),
    /** A copy of access_control.visibility, for the read predicate of lists and statistics. */
    visibility: text("visibility").notNull(),
    participantCount: integer("participant_count").notNull(),
    sessionCount: integer("session_count").notNull(),
    revision: bigint("revision", { mode: "number" }).notNull(),
    createdAt: timestampMs("created_at").notNull(),
    updatedAt: timestampMs("updated_at").notNull(),
    lastActivityAt: timestampMs("last_activity_at").notNull(),
    /** null when the context never expires (timeout_ms 0). */
    expiresAt: timestampMs("expires_at"),
    /**
     * When the expiry sweeper should look at the context: expires_at, or up to a tenth of the
     * timeout before it. Indexed in expires_at's place, so that the writes that move expires_at
     * on every revision (each join, leave, state write) leave every index alone and Postgres
     * updates the row in place (a HOT update): with expires_at indexed, each revision of a busy
     * context added an entry to all seven indexes and a dead row version for vacuum (a minute of
     * AddParticipant on Postgres 15: 0 % HOT, 19,700 dead versions of 1,058 rows; after, 99 % HOT
     * and 422). change-sql.ts moves it only when
     * expires_at runs a tenth of the timeout past it; the sweeper re-arms it at expires_at when it
     * finds the context not yet expired.
     */
    sweepAt: timestampMs("sweep_at"),
    /** When the status became TERMINATED: auto-cleanup deletes the row cleanup_delay_ms later. */
    terminatedAt: timestampMs("terminated_at"),
    /**
     * Events up to this revision are compacted away (0: none yet). The service sets it (through
     * compactHistory or updateContext); the store writes it verbatim. Not indexed: see
     * contextsToCompact in sweep-queries.ts for why its sweep scans contexts.
     */
    compactRevision: bigint("compact_revision", { mode: "number" }).notNull().default(0),
    /** The revision of the newest row in state_snapshots for this context (0: none), as the service sets it. */
    stateSnapshotRevision: bigint("state_snapshot_revision", { mode: "number" }).notNull().default(0),
  },
  (t) => [
    // A name is unique among an owner's live contexts; terminating one frees its name.
    uniqueIndex(CONTEXTS_OWNER_NAME_LIVE_KEY).on(t.owner, t.name).where(sql`${t.status} <> 'TERMINATED'`),
    // ListContexts: newest first, keyset on (created_at, context_id). NULLS FIRST is what a plain
    // ORDER BY … DESC means; drizzle-kit would otherwise write NULLS LAST, an order the planner
    // will not match against the query's (the columns are NOT NULL, but it does not know to care).
    index("contexts_created_at_id_idx").on(t.createdAt.desc().nullsFirst(), t.contextId.desc().nullsFirst()),
    // ListContexts filtered by owner (also the "own contexts" half of the read predicate).
    index("contexts_owner_created_at_id_idx").on(
      t.owner,
      t.createdAt.desc().nullsFirst(),
      t.contextId.desc().nullsFirst(),
    ),
    index("contexts_tags_idx").using("gin", t.tags),
    // The expiry sweeper looks for live contexts past sweep_at. Partial: TERMINATED contexts
    // keep their past expiry (forever without auto_cleanup) and would otherwise pile up in
    // every sweep's index range.
    index("contexts_live_sweep_at_idx").on(t.sweepAt).where(sql`${t.status} <> 'TERMINATED'`),
    // The cleanup sweeper looks for TERMINATED contexts by terminated_at.
    index("contexts_terminated_at_idx").on(t.terminatedAt).where(sql`${t.status} = 'TERMINATED'`),
  ],
);

/** Name of the unique index behind PARTICIPANT_ALREADY_EXISTS; sql-errors.ts matches on it. */
export const PARTICIPANTS_CONTEXT_AGENT_KEY = "participants_context_agent_key";

/**
 * One row per membership. Rows go with their context (ON DELETE CASCADE): deleting a context
 * removes its members in the same statement, and events keep what they were.
 */
export const participants = pgTable(
  "participants",
  {
    participantId: uuid("participant_id").primaryKey(),
    contextId: uuid("context_id").notNull(),
    agentId: text("agent_id").notNull(),
    participantType: text("participant_type").notNull(),
    displayName: text("display_name").notNull(),
    status: text("status").notNull(),
    roles: text("roles").array().notNull(),
    capabilities: text("capabilities").array().notNull(),
    metadata: jsonb("metadata").$type<JsonObject>().notNull(),
    joinedAt: timestampMs("joined_at").notNull(),
    lastActivityAt: timestampMs("last_activity_at").notNull(),
    /** An absolute deadline, so a restart or failover never extends or resets it. */
    leaseExpiresAt: timestampMs("lease_expires_at").notNull(),
    /** When the lease lapsed; null while ACTIVE. The removal deadline counts from here. */
    inactiveSince: timestampMs("inactive_since"),
  },
  (t) => [
    foreignKey({ name: "participants_context_id_fkey", columns: [t.contextId], foreignColumns: [contexts.contextId] }).onDelete(
      "cascade",
    ),
    // One membership per agent per context; also serves findMember and the cascade's lookup.
    uniqueIndex(PARTICIPANTS_CONTEXT_AGENT_KEY).on(t.contextId, t.agentId),
    // The other direction: "contexts this agent is a member of", the membership half of the
    // read predicate of ListContexts and statistics.
    index("participants_agent_context_idx").on(t.agentId, t.contextId),
    // ListParticipants: oldest first, keyset on (joined_at, participant_id).
    index("participants_context_joined_at_id_idx").on(t.contextId, t.joinedAt, t.participantId),
    // The presence sweepers: lapsed leases among ACTIVE members, and INACTIVE members past the
    // activity timeout. Partial, so each scans only the rows in the state it is looking for.
    index("participants_active_lease_idx").on(t.leaseExpiresAt).where(sql`${t.status} = 'ACTIVE'`),
    index("participants_inactive_since_idx").on(t.inactiveSince).where(sql`${t.status} = 'INACTIVE'`),
  ],
);

/**
 * The audit trail and watch feed: one row per event, stamped with the context's revision.
 * No foreign key to contexts: CONTEXT_DELETED must outlive the context row it reports.
 */
export const contextEvents = pgTable(
  "context_events",
  {
    contextId: uuid("context_id").notNull(),
    revision: bigint("revision", { mode: "number" }).notNull(),
    /** Order within the revision (0, 1, …). */
    seq: integer("seq").notNull(),
    eventId: uuid("event_id").notNull(),
    type: text("type").notNull(),
    actor: text("actor").notNull(),
    occurredAt: timestampMs("occurred_at").notNull(),
    reason: text("reason").notNull(),
    payload: jsonb("payload").$type<JsonValue>().notNull(),
  },
  (t) => [
    primaryKey({ name: "context_events_pkey", columns: [t.contextId, t.revision, t.seq] }),
    // purgeDeletedContextEvents starts from the CONTEXT_DELETED events (one per deleted context,
    // gone once purged), oldest first. Partial, so it stays as small as the backlog of deleted
    // contexts, where an index on every event's occurred_at would grow with all retained history
    // and make each purge pass walk the old events of live contexts.
    index("context_events_deleted_at_idx").on(t.occurredAt).where(sql`${t.type} = 'CONTEXT_DELETED'`),
  ],
);

/**
 * The shared state as it was at a revision: a base that GetSharedState replays STATE_CHANGED
 * events onto, so reading an old revision costs at most the events since one snapshot. Rows go
 * with their context (ON DELETE CASCADE); compactHistory drops those no longer needed as a base.
 */
export const stateSnapshots = pgTable(
  "state_snapshots",
  {
    contextId: uuid("context_id").notNull(),
    revision: bigint("revision", { mode: "number" }).notNull(),
    state: jsonb("state").$type<SharedState>().notNull(),
    createdAt: timestampMs("created_at").notNull(),
  },
  (t) => [
    // Also serves "the newest at or before revision N" (a backward scan of one context's range).
    primaryKey({ name: "state_snapshots_pkey", columns: [t.contextId, t.revision] }),
    foreignKey({ name: "state_snapshots_context_id_fkey", columns: [t.contextId], foreignColumns: [contexts.contextId] }).onDelete(
      "cascade",
    ),
  ],
);

/**
 * Idempotency keys: the first call with a (principal, request_id) claims the row and saves its
 * result; retries within 24 h read that result back instead of doing the work again.
 */
export const requestKeys = pgTable(
  "request_keys",
  {
    principal: text("principal").notNull(),
    requestId: text("request_id").notNull(),
    method: text("method").notNull(),
    /** null until the claiming call saves its result (a rolled-back claim leaves no row at all). */
    result: jsonb("result").$type<JsonValue>(),
    createdAt: timestampMs("created_at").notNull(),
  },
  (t) => [
    primaryKey({ name: "request_keys_pkey", columns: [t.principal, t.requestId] }),
    // A cleanup job deletes keys older than 24 h.
    index("request_keys_created_at_idx").on(t.createdAt),
  ],
);
