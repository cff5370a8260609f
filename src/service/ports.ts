/**
 * What the services need from the outside world. The store implements these on Postgres and on
 * PGlite; unit tests implement them in memory. Nothing here knows about SQL, drizzle or gRPC.
 */
import type { Context, ContextFilter } from "../domain/context.js";
import type { ContextEvent, EventPosition } from "../domain/event.js";
import type { JsonValue } from "../domain/json.js";
import type { SharedState } from "../domain/shared-state.js";
import type { StatisticsGroup } from "../domain/statistics.js";

export type { StatisticsGroup };

/** Per-call limits the store honours. */
export interface StoreCall {
  /** Absolute deadline (epoch ms). Database work still running when it passes is cancelled (TIMEOUT). */
  readonly deadline?: number;
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
  /** Reads a context (without shared state) and locks its row (SELECT … FOR UPDATE); null if absent. */
  lockContext(contextId: string): Promise<Context | null>;
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
}

/** A page of ListContexts, as the store sees it. */
export interface ContextListQuery {
  /** Only contexts this principal may read: its own, and PUBLIC ones. */
  readonly principal: string;
  readonly filter: ContextFilter;
  /** Keyset position: only contexts strictly older than this (created_at, context_id), newest first. */
  readonly after?: { readonly createdAt: Date; readonly contextId: string };
  /** Rows to return at most. */
  readonly limit: number;
}

export interface ContextListResult {
  readonly contexts: readonly Context[];
  /** How many contexts match the principal and filter in all, ignoring `after` and `limit`. */
  readonly totalSize: number;
}

export interface ContextStore {
  /** Runs `work` in one transaction; it commits when `work` resolves and rolls back when it throws. */
  transaction<T>(call: StoreCall, work: (tx: ContextTx) => Promise<T>): Promise<T>;
  /** Reads a context; `withState` adds its shared state. */
  getContext(call: StoreCall, contextId: string, options: { readonly withState: boolean }): Promise<Context | null>;
  listContexts(call: StoreCall, query: ContextListQuery): Promise<ContextListResult>;
  /** Groups of the contexts `principal` may read. */
  contextStatistics(call: StoreCall, principal: string): Promise<StatisticsGroup[]>;
  /** A context's events from `from` (inclusive) in (revision, seq) order, at most `limit`. */
  listEvents(call: StoreCall, contextId: string, from: EventPosition, limit: number): Promise<ContextEvent[]>;
}

/** The time, so tests can move it. Dates have millisecond precision, as stored. */
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };
