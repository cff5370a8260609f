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
import type { JsonValue } from "../domain/json.js";
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
    /** When the status became TERMINATED: auto-cleanup deletes the row cleanup_delay_ms later. */
    terminatedAt: timestampMs("terminated_at"),
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
    // The expiry sweeper looks for contexts past expires_at.
    index("contexts_expires_at_idx").on(t.expiresAt),
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
  (t) => [primaryKey({ name: "context_events_pkey", columns: [t.contextId, t.revision, t.seq] })],
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
