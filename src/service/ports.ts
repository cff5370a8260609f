/**
 * What the services need from the outside world. The store implements these on Postgres and on
 * PGlite; unit tests implement them in memory. Nothing here knows about SQL, drizzle or gRPC.
 */
import type { StoredDocument } from "../domain/context-codec.js";
import type { Context, ContextFilter } from "../domain/context.js";
import type { ContextEvent, EventPosition } from "../domain/event.js";
import type { JsonValue } from "../domain/json.js";
import type { Participant, ParticipantFilter } from "../domain/participant.js";
import type { SharedState, StateChangeSet } from "../domain/shared-state.js";
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

/** Which rows a write is decided on. */
export interface BaseQuery {
  readonly contextId: string;
  /** With the context's shared state. */
  readonly withState: boolean;
  /** Agents whose membership the decision needs: the caller (for its permissions), those a join adds. */
  readonly agents: readonly string[];
  /** A participant the write is about (UpdateParticipant, RemoveParticipant, Heartbeat). */
  readonly participantId?: string;
}

/**
 * What a write is decided on: a context and some (or all) of its participants, every row as of the
 * context's `revision` — read in one statement, or kept by the read cache from this instance's own
 * last write. Every change to a context's participants is a revision of the context, so a change
 * decided on a base and applied while the context is still at that revision (ContextChange.baseRevision)
 * was decided on the current rows.
 */
export interface WriteBase {
  readonly context: Context;
  /** The participants read (all of them when `complete`), by participant id. */
  readonly participants: ReadonlyMap<string, Participant>;
  /** The same participants by agent id (one membership per agent per context): a member is found without a scan. */
  readonly members: ReadonlyMap<string, Participant>;
  /** Every participant of the context is in `participants`: one absent is not a member. */
  readonly complete: boolean;
  /** Agents asked for: those not in `participants` are known not to be members. */
  readonly agents: ReadonlySet<string>;
  /** Participant ids asked for: those not in `participants` are known not to exist. */
  readonly participantIds: ReadonlySet<string>;
  /** Served from this instance's cache rather than read now: it may be a moment out of date. */
  readonly cached: boolean;
}

/**
 * One change to one context, as the service decided it on a base: applied whole (in one statement)
 * or not at all, and only while the context is still at `baseRevision`.
 */
export interface ContextChange {
  readonly contextId: string;
  /** The revision the change was decided at; 0 creates the context. */
  readonly baseRevision: number;
  /** The base it was decided on (the cache keeps its successor); none for a create. */
  readonly base?: WriteBase;
  /**
   * The context after the change, null when it is deleted. Written: every column but context_id,
   * owner, created_at, session_count and compact_revision (the sweeper's), and state_snapshot_revision
   * only upwards.
   */
  readonly context: Context | null;
  /** The shared state after the change, when it changed (a create: the initial state). */
  readonly sharedState?: SharedState;
  /** Its size as canonical JSON, when known (the cache weighs entries by it). */
  readonly stateBytes?: number;
  /** `sharedState` as JSON text, when the use case made it already (its checksum's): stored as is. */
  readonly stateJson?: string;
  /** Store `sharedState` as the snapshot at the new revision. */
  readonly snapshot?: boolean;
  readonly inserted?: readonly Participant[];
  /**
   * Participants whose columns change (all but participant_id, context_id, agent_id and joined_at;
   * last_activity_at and lease_expires_at never move backwards: a lease renewal is not a revision).
   */
  readonly updated?: readonly Participant[];
  readonly deleted?: readonly string[];
  /** The events of the new revision. */
  readonly events: readonly ContextEvent[];
  /**
   * request_id: the change applies only if the key is new (or older than 24 h), and saves `result`
   * for replays — as `json` when the use case wrote its text already.
   */
  readonly request?: { readonly key: RequestKey; readonly result: StoredDocument; readonly json?: string };
}

/** What applying a change did. */
export type ApplyOutcome =
  | {
      readonly applied: true;
      /** The context as stored (its bookkeeping columns as the database has them); null when deleted. */
      readonly context: Context | null;
      /** The `updated` participants as stored (a lease renewed meanwhile included). */
      readonly updated: readonly Participant[];
    }
  /** The context is no longer at baseRevision (or is gone): nothing was written. */
  | { readonly applied: false; readonly reason: "revision" }
  /** The request key was taken: nothing was written; `prior` is what its first call saved (null: not readable yet). */
  | { readonly applied: false; readonly reason: "request"; readonly prior: StoredResult | null };

/** What a locked base read found. */
export interface LockedBase {
  /** The base, its context row locked until the transaction ends; null when the context does not exist (or, skipLocked, is held). */
  readonly base: WriteBase | null;
  /** The request key's stored result, when the key was taken (the work is a replay). */
  readonly prior: StoredResult | null;
}

/**
 * A transaction holding a context's row lock: the path for writes whose base went stale, and the
 * sweepers'. The lock orders the writers of one context. Its statements are sent in batches, each
 * one round trip: lockBase opens the transaction, finish() applies a change and commits together.
 */
export interface ContextTx {
  /**
   * Reads a base and locks its context row (FOR UPDATE; with skipLocked, a row another
   * transaction holds is skipped: base null); with `request`, also what its first call saved.
   */
  lockBase(query: BaseQuery & { readonly skipLocked?: boolean }, request?: RequestKey): Promise<LockedBase>;
  /** Applies the change and commits, in one round trip; the transaction is over. */
  finish(change: ContextChange): Promise<ApplyOutcome>;
  /**
   * Moves a context's last activity and expiry without a revision (the sweeper: a participant
   * holding a live lease keeps its context alive).
   */
  keepAlive(contextId: string, lastActivityAt: Date, expiresAt: Date | null): Promise<void>;
  /** Stores the state as it is at `revision`, a base for reading older revisions by replay. */
  saveStateSnapshot(contextId: string, revision: number, state: SharedState): Promise<void>;
  /**
   * Drops a context's events with revision <= upTo, and its snapshots older than the newest one
   * at or before upTo (still needed as a replay base); records compact_revision = upTo.
   */
  compactHistory(contextId: string, upTo: number): Promise<void>;
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
  /** Only renew when the participant belongs to this agent (the caller renewing itself); unset: anyone's (a manager renewing it). */
  readonly agentId?: string;
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
  /** Contexts whose revision - compact_revision > retention + slack (compacting in slices, not every revision), among the next slice of contexts looked at. */
  contextsToCompact(retention: number, slack: number, limit: number): Promise<string[]>;
  /** Of `contextIds` (those revised since the last pass), the ones whose revision - compact_revision > retention + slack, looked up by key. */
  contextsToCompactAmong(contextIds: readonly string[], retention: number, slack: number): Promise<string[]>;
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

/** What an older revision of the shared state is rebuilt from, read in one statement (one snapshot of the database). */
export interface StateHistory {
  /** The context's revision and compaction horizon. */
  readonly revision: number;
  readonly compactRevision: number;
  /** The newest state snapshot at or before the revision asked for; null when none is stored. */
  readonly snapshot: { readonly revision: number; readonly state: SharedState } | null;
  /** The STATE_CHANGED change sets after the snapshot up to the revision asked for, in order. */
  readonly changes: readonly StateChangeSet[];
}

export interface ContextStore {
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
   * Renews the lease of an ACTIVE participant (of `agentId`, when given) in one statement (no
   * context lock: renewals are not revisions). Returns the renewed participant, or null when there
   * is no such ACTIVE participant (absent, INACTIVE, or another agent's).
   */
  renewLease(call: StoreCall, renewal: LeaseRenewal): Promise<Participant | null>;
  readonly sweep: SweepCandidates;
  /** What the state at `revision` is rebuilt from; null when the context does not exist. */
  stateHistory(call: StoreCall, contextId: string, revision: number): Promise<StateHistory | null>;
  /** The current revision of each of these contexts that still exists (absent = deleted). */
  heads(call: StoreCall, contextIds: readonly string[]): Promise<Map<string, number>>;

  // Writes. Each reaches the database once: a base is read (unless cached), the service decides,
  // and apply() writes the change in one statement if the context is still at the base's revision.

  /** The base of a write, read in one statement (no lock); null when the context does not exist. */
  loadBase(call: StoreCall, query: BaseQuery): Promise<WriteBase | null>;
  /** Applies one change in one statement (no transaction): all of it, or nothing when the base is stale or the request key taken. */
  apply(call: StoreCall, change: ContextChange): Promise<ApplyOutcome>;
  /**
   * Applies several changes in one transaction, sent together (one round trip): all or nothing
   * when any fails. A change whose key its statement saw taken, or whose base is stale, applies
   * nothing and the others still do; a key taken by a call the statement could not see yet aborts
   * the whole batch (every change: reason "request", prior null — the caller reads the key).
   */
  applyAll(call: StoreCall, changes: readonly ContextChange[]): Promise<ApplyOutcome[]>;
  /** What the first call with `key` saved; null when there is none (or it is older than 24 h). */
  storedResult(call: StoreCall, key: RequestKey): Promise<StoredResult | null>;
  /** Runs `work` in one transaction; it commits at finish() (or when `work` resolves) and rolls back when `work` throws. */
  transaction<T>(call: StoreCall, work: (tx: ContextTx) => Promise<T>): Promise<T>;
}

/**
 * "Context X reached revision N", rung after every commit, heard by every instance's watch hub:
 * through Redis pub/sub with REDIS_URL, in-process otherwise. Only a hint — a lost ring is made
 * good by the hub's periodic check of the database heads — so ring() never fails a caller.
 */
export interface Doorbell {
  /**
   * "Context X reached revision N", to every instance. `events`, when given, are the revision's
   * events in the store's wire form (CommittedEvents.wire): the other instances' watch hubs
   * deliver them without reading them back; a doorbell may drop them (the ring alone still works).
   */
  ring(contextId: string, revision: number, events?: string): void;
  /** Calls `listener` for every ring, from any instance, with its events when they came along; returns the unsubscribe. */
  subscribe(listener: (contextId: string, revision: number, events?: string) => void): () => void;
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
