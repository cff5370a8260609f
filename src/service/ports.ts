/**
 * What the services need from the outside world. The store implements these on Postgres and on
 * PGlite; unit tests implement them in memory. Nothing here knows about SQL, drizzle or gRPC.
 */
import type { Context, ContextFilter } from "../domain/context.js";
import type { ContextEvent, EventPosition } from "../domain/event.js";
import type { JsonValue } from "../domain/json.js";
import type { Participant, ParticipantFilter } from "../domain/participant.js";
import type { SharedState } from "../domain/shared-state.js";
import type { StatisticsGroup } from "../domain/statistics.js";

export type { StatisticsGroup };

/** Per-call limits the store honours. */
export interface StoreCall {
  /** Absolute deadline (epoch ms). Database work still running when it passes is cancelled (TIMEOUT). */
  readonly deadline?: number;
  /**
   * The read may be served by a read replica (DATABASE_READ_URL), so it may be slightly stale.
   * Set only for reads that decide nothing (lists, statistics, the event trail); reads that decide a
   * write (permissions, expected_revision, capacity) and reads that fill the cache go to the primary.
   */
  readonly replicaOk?: boolean;
}

/** An idempotency key: one per principal and request_id. */
export interface RequestKey {
  readonly principal: string;
  readonly requestId: string;
  /** The RPC that claimed it; a reuse by another RPC is refused. */
  readonly method: string;
}

/** What the first call with a request key stored. */
export interface StoredResult {
  readonly method: string;
  readonly result: JsonValue;
}

/**
 * Work inside one transaction. Locked rows stay locked until it ends, which orders the writers of
 * one context; every change bumps the context's revision and appends its events here.
 */
export interface ContextTx {
  /**
   * Reads a context and locks its row (SELECT … FOR UPDATE); null if absent. Without shared state
   * unless `withState`. With `skipLocked` (the sweepers), a row another transaction holds is
   * skipped: null as well.
   */
  lockContext(contextId: string, options?: { readonly skipLocked?: boolean; readonly withState?: boolean }): Promise<Context | null>;
  /** Writes a context's shared state (the caller bumps the revision with updateContext). */
  updateSharedState(contextId: string, state: SharedState): Promise<void>;
  /** Stores the state as it is at `revision`, a base for reading older revisions by replay. */
  saveStateSnapshot(contextId: string, revision: number, state: SharedState): Promise<void>;
  /**
   * Drops a context's events with revision <= upTo, and its snapshots older than the newest one
   * at or before upTo (still needed as a replay base); records compact_revision = upTo.
   */
  compactHistory(contextId: string, upTo: number): Promise<void>;
  /** Inserts a new context. The owner already having that name (not TERMINATED) → AppError CONTEXT_EXISTS. */
  insertContext(context: Context & { readonly sharedState: SharedState }): Promise<void>;
  /** Writes every column of an existing context but shared state and created_at; name clash → CONTEXT_EXISTS. */
  updateContext(context: Context): Promise<void>;
  /** Deletes a context (its events stay, for watchers to read CONTEXT_DELETED). */
  deleteContext(contextId: string): Promise<void>;
  /** Appends events; each (context_id, revision, seq) is unique. */
  appendEvents(events: readonly ContextEvent[]): Promise<void>;
  /**
   * Claims a request key for this transaction. Returns null when the key is new (or its claim is
   * older than 24 h): the caller does the work and saves its result. Otherwise returns what the
   * first call saved; a concurrent first call is waited for, since its claim row is locked.
   */
  claimRequest(key: RequestKey): Promise<StoredResult | null>;
  /** Saves the result of the work for a claimed key. */
  saveRequestResult(key: RequestKey, result: JsonValue): Promise<void>;

  // Participants. The caller holds the context's row lock (lockContext) before touching them:
  // that lock orders every change to a context's membership and keeps participant_count exact.

  /** A participant of the context, locked (FOR UPDATE); null when absent or in another context. */
  lockParticipant(contextId: string, participantId: string): Promise<Participant | null>;
  /** The membership of `agentId` in the context (not locked); null when it has none. */
  findMember(contextId: string, agentId: string): Promise<Participant | null>;
  /** Inserts participants. An agent already a member → AppError PARTICIPANT_ALREADY_EXISTS. */
  insertParticipants(participants: readonly Participant[]): Promise<void>;
  /** Writes every column of an existing participant but participant_id, context_id, agent_id and joined_at. */
  updateParticipant(participant: Participant): Promise<void>;
  /** Deletes participants of the context. */
  deleteParticipants(contextId: string, participantIds: readonly string[]): Promise<void>;
  /** ACTIVE participants whose lease_expires_at <= now, locked, oldest lease first. */
  lapsedParticipants(contextId: string, now: Date, limit: number): Promise<Participant[]>;
  /** INACTIVE participants whose inactive_since <= cutoff, locked. */
  expiredParticipants(contextId: string, cutoff: Date, limit: number): Promise<Participant[]>;
  /** The latest last_activity_at among participants whose lease is still current at `now`; null if none. */
  latestPresence(contextId: string, now: Date): Promise<Date | null>;
}

/** A page of ListParticipants, as the store sees it. */
export interface ParticipantListQuery {
  readonly contextId: string;
  readonly filter: ParticipantFilter;
  /** Keyset position: only participants after this (joined_at, participant_id), oldest first. */
  readonly after?: { readonly joinedAt: Date; readonly participantId: string };
  readonly limit: number;
}

export interface ParticipantListResult {
  readonly participants: readonly Participant[];
  /** How many participants of the context match the filter in all. */
  readonly totalSize: number;
}

/** Heartbeat's fast path: renew an ACTIVE participant's lease without locking the context. */
export interface LeaseRenewal {
  readonly contextId: string;
  readonly participantId: string;
  /** Only renew when the participant belongs to this agent (the caller renewing itself). */
  readonly agentId: string;
  readonly now: Date;
  readonly leaseExpiresAt: Date;
}

/** What the sweepers look for; each returns at most `limit` context ids, in no promised order. */
export interface SweepCandidates {
  /** Contexts with an ACTIVE participant whose lease_expires_at <= now. */
  contextsWithLapsedLeases(now: Date, limit: number): Promise<string[]>;
  /** Contexts with an INACTIVE participant whose inactive_since <= cutoff. */
  contextsWithExpiredParticipants(cutoff: Date, limit: number): Promise<string[]>;
  /** Contexts not TERMINATED whose expires_at <= now. */
  expiredContexts(now: Date, limit: number): Promise<string[]>;
  /** TERMINATED contexts with configuration.autoCleanup whose terminated_at + cleanupDelayMs <= now. */
  contextsDueForCleanup(now: Date, limit: number): Promise<string[]>;
  /** Contexts whose revision - compact_revision > retention + slack (compacting in slices, not every revision). */
  contextsToCompact(retention: number, slack: number, limit: number): Promise<string[]>;
  /** Deletes the events of contexts that no longer exist, written before `olderThan`; returns how many rows went. */
  purgeDeletedContextEvents(olderThan: Date, limit: number): Promise<number>;
}

/** A page of ListContexts, as the store sees it. */
export interface ContextListQuery {
  /** Only contexts this principal may read: its own, PUBLIC ones, and those it is a participant of. */
  readonly principal: string;
  readonly filter: ContextFilter;
  /** Keyset position: only contexts strictly older than this (created_at, context_id), newest first. */
  readonly after?: { readonly createdAt: Date; readonly contextId: string };
  /** Rows to return at most. */
  readonly limit: number;
  /**
   * How far to count the matches for totalSize. Unset: all of them. `{ upTo: n }`: at most n + 1,
   * so totalSize is exact up to n and n + 1 means "more than n" (the count stops there, so its cost
   * does not grow with the table). `false`: no count, totalSize undefined (a later page: the caller
   * carries the first page's total).
   */
  readonly count?: { readonly upTo: number } | false;
}

export interface ContextListResult {
  readonly contexts: readonly Context[];
  /** How many contexts match the principal and filter in all, ignoring `after` and `limit`, as far as `count` asked. */
  readonly totalSize: number | undefined;
}

export interface ContextStore {
  /** Runs `work` in one transaction; it commits when `work` resolves and rolls back when it throws. */
  transaction<T>(call: StoreCall, work: (tx: ContextTx) => Promise<T>): Promise<T>;
  /** Reads a context; `withState` adds its shared state. */
  getContext(call: StoreCall, contextId: string, options: { readonly withState: boolean }): Promise<Context | null>;
  listContexts(call: StoreCall, query: ContextListQuery): Promise<ContextListResult>;
  /** Groups of the contexts `principal` may read (the same rule as ListContexts). */
  contextStatistics(call: StoreCall, principal: string): Promise<StatisticsGroup[]>;
  /** A context's events from `from` (inclusive) in (revision, seq) order, at most `limit`. */
  listEvents(call: StoreCall, contextId: string, from: EventPosition, limit: number): Promise<ContextEvent[]>;
  /** The membership of `agentId` in the context; null when it has none. */
  findMember(call: StoreCall, contextId: string, agentId: string): Promise<Participant | null>;
  /** One participant of the context; null when absent or in another context. */
  getParticipant(call: StoreCall, contextId: string, participantId: string): Promise<Participant | null>;
  listParticipants(call: StoreCall, query: ParticipantListQuery): Promise<ParticipantListResult>;
  /**
   * Renews the lease of an ACTIVE participant owned by `agentId` in one statement (no context
   * lock: renewals are not revisions). Returns the renewed participant, or null when there is no
   * such ACTIVE participant (absent, INACTIVE, or another agent's): the caller then takes the slow path.
   */
  renewLease(call: StoreCall, renewal: LeaseRenewal): Promise<Participant | null>;
  readonly sweep: SweepCandidates;
  /** The newest snapshot at or before `revision`; null when none is stored. */
  stateSnapshotAtOrBefore(call: StoreCall, contextId: string, revision: number): Promise<{ revision: number; state: SharedState } | null>;
  /** The STATE_CHANGED events with after < revision <= upTo, in order. */
  stateChangesBetween(call: StoreCall, contextId: string, after: number, upTo: number): Promise<ContextEvent[]>;
  /** The current revision of each of these contexts that still exists (absent = deleted). */
  heads(call: StoreCall, contextIds: readonly string[]): Promise<Map<string, number>>;
}

/**
 * "Context X reached revision N", rung after every commit, heard by every instance's watch hub:
 * through Redis pub/sub with REDIS_URL, in-process otherwise. Only a hint — a lost ring is made
 * good by the hub's periodic check of the database heads — so ring() never fails a caller.
 */
export interface Doorbell {
  ring(contextId: string, revision: number): void;
  /** Calls `listener` for every ring, from any instance; returns the unsubscribe. */
  subscribe(listener: (contextId: string, revision: number) => void): () => void;
  /**
   * "What is cached of context X went stale though its revision did not move" (a lease renewal, a
   * compaction): every instance's read cache drops it. A hint like ring(): never throws or waits.
   */
  touch(contextId: string): void;
  /** Calls `listener` for every touch, from any instance (this one included); returns the unsubscribe. */
  subscribeTouches(listener: (contextId: string) => void): () => void;
  /**
   * Calls `listener(false)` when this instance stops hearing other instances' rings and touches
   * (Redis unreachable) and `listener(true)` when it hears them again; never called in-process.
   */
  subscribeHealth(listener: (connected: boolean) => void): () => void;
  close(): Promise<void>;
}

/** A touch of this id stands for every context: read caches drop all they hold (sent when touches were lost). */
export const ALL_CONTEXTS = "*";

/**
 * Where a cached copy of a context's reads stands in the shared cache: the newest revision any
 * instance committed (`revision`), how often it was touched without a revision (`generation`), and
 * the cache-wide `epoch` (bumped after an outage in which invalidations may have been lost).
 * A copy tagged with older values than these is stale.
 */
export interface CacheStamp {
  readonly revision: number;
  readonly generation: number;
  readonly epoch: number;
}

/** What the shared cache answered for one key: the copy, if a fresh one is there, and the stamp to tag a new copy with. */
export interface SharedCacheRead {
  readonly payload: string | null;
  /** The payload's own revision tag (when there is a payload). */
  readonly revision: number;
  readonly stamp: CacheStamp;
}

/**
 * The L2 cache every instance shares (Redis with REDIS_URL). Entries of a context (`scope`) are
 * checked against its stamp on every read and fill, so a copy never replaces a newer one and a
 * copy older than the last commit is never served. Every method treats Redis trouble as a miss
 * (null / false), never as an error: the database is always there to answer.
 */
export interface SharedCache {
  /** The payload at `key` if it is fresh for `scope` (null scope: only the epoch is checked); null when unreachable. */
  get(scope: string | null, key: string): Promise<SharedCacheRead | null>;
  /** Stores a payload tagged `revision`, read with `stamp`, for `ttlMs` — unless the scope moved past the stamp meanwhile. */
  fill(scope: string | null, key: string, payload: string, revision: number, stamp: CacheStamp, ttlMs: number): Promise<boolean>;
  /** The scope reached `revision`: older copies stop being served; `keys` are deleted outright. False when unreachable. */
  advance(scope: string, revision: number, keys: readonly string[]): Promise<boolean>;
  /** The scope's copies went stale without a revision (its generation moves on). False when unreachable. */
  touch(scope: string): Promise<boolean>;
  /** Makes every copy stale (after an outage in which advance/touch calls were lost). */
  bumpEpoch(): Promise<boolean>;
  close(): Promise<void>;
}

/** The in-process L1: bounded by entries and bytes, entries expire after a TTL. */
export interface LocalCache<V> {
  get(key: string): V | undefined;
  /** `bytes`: the entry's size against the byte bound; `ttlMs`: shorter than the default, when given. */
  set(key: string, value: V, bytes: number, ttlMs?: number): void;
  delete(key: string): void;
  clear(): void;
  /** Entries dropped to stay within the bounds (not expiries or deletes). */
  readonly evictions: number;
  readonly size: number;
}

/**
 * Operational counters the services report (Prometheus in production, see src/metrics/); every
 * method is optional to call and cheap, and none may throw into a use case.
 */
export interface ServiceMetrics {
  /** What one expiry sweep pass did, by kind (lapsed, removed, terminated, deleted, compacted, purged). */
  sweepPassed(counts: Readonly<Record<string, number>>): void;
}

/** The time, so tests can move it. Dates have millisecond precision, as stored. */
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };
