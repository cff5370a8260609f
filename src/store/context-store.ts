/**
 * The ContextStore port (service/ports.ts) on Postgres or PGlite, through drizzle's query builder.
 * This file holds the store's SQL; rows ⇄ domain objects live in context-rows.ts.
 *
 * Deadlines: a call with a deadline runs in a transaction whose statement_timeout is the time left
 * (set_config(…, is_local = true) lasts until the transaction ends), so the database itself
 * cancels work still running when the deadline passes (SQLSTATE 57014 → TIMEOUT); a JS timer could
 * only stop waiting, not stop the database.
 */
import { and, asc, count, desc, eq, like, max, or, sql, type SQL } from "drizzle-orm";
import type { PgTransactionConfig } from "drizzle-orm/pg-core";
import { AppError } from "../domain/app-error.js";
import type { Context, ContextFilter, ContextStatus, ContextType, LifecycleStage } from "../domain/context.js";
import type { ContextEvent, EventPosition } from "../domain/event.js";
import type { JsonValue } from "../domain/json.js";
import type { SharedState } from "../domain/shared-state.js";
import {
  systemClock,
  type Clock,
  type ContextListQuery,
  type ContextListResult,
  type ContextStore,
  type ContextTx,
  type RequestKey,
  type StatisticsGroup,
  type StoreCall,
  type StoredResult,
} from "../service/ports.js";
import {
  contextColumnsWithoutState,
  contextColumnsWithState,
  contextFromRow,
  contextInsertValues,
  contextUpdateValues,
  eventFromRow,
  eventInsertValues,
} from "./context-rows.js";
import type { AppDatabase, Database } from "./database.js";
import { contextEvents, contexts, requestKeys } from "./schema.js";
import { toStoreError } from "./sql-errors.js";

/** A drizzle transaction on either driver. */
type AppTransaction = Parameters<Parameters<AppDatabase["transaction"]>[0]>[0];
/** Where a query runs: the database (outside transactions) or a transaction. */
type Executor = AppDatabase | AppTransaction;

/** How long an idempotency key holds: a retry after this does the work again. */
const REQUEST_KEY_TTL_MS = 24 * 60 * 60 * 1000;

export interface PgContextStoreOptions {
  /** The time of request-key claims; tests move it to expire keys. */
  readonly clock?: Clock;
}

function timeoutBeforeStart(): AppError {
  return new AppError("TIMEOUT", "the deadline passed before the database work started");
}

/** Milliseconds left before the call's deadline; throws TIMEOUT when none are. */
function remainingMs(call: StoreCall): number {
  if (call.deadline === undefined) throw new Error("remainingMs needs a deadline");
  const left = Math.floor(call.deadline - Date.now());
  if (left <= 0) throw timeoutBeforeStart();
  return left;
}

/** `(created_at, context_id) < (…)`: the newest-first keyset, matched by contexts_created_at_id_idx. */
function olderThan(after: { readonly createdAt: Date; readonly contextId: string }): SQL {
  return sql`(${contexts.createdAt}, ${contexts.contextId}) < (${after.createdAt.toISOString()}::timestamptz, ${after.contextId}::uuid)`;
}

/** LIKE's wildcards and its escape character, escaped, so a name prefix matches literally. */
function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, (c) => `\\${c}`);
}

/**
 * What `principal` may read. The same rule as domain/permissions.ts: the owner reads its contexts,
 * anyone reads PUBLIC ones. Participants' access joins this predicate when participants land.
 */
function readableBy(principal: string): SQL {
  return or(eq(contexts.owner, principal), eq(contexts.visibility, "PUBLIC")) as SQL;
}

function filterConditions(filter: ContextFilter): SQL[] {
  const conditions: SQL[] = [];
  if (filter.type !== undefined) conditions.push(eq(contexts.type, filter.type));
  if (filter.status !== undefined) conditions.push(eq(contexts.status, filter.status));
  if (filter.lifecycleStage !== undefined) conditions.push(eq(contexts.lifecycleStage, filter.lifecycleStage));
  if (filter.owner !== undefined) conditions.push(eq(contexts.owner, filter.owner));
  if (filter.namePrefix !== undefined && filter.namePrefix !== "") {
    conditions.push(like(contexts.name, `${escapeLike(filter.namePrefix)}%`));
  }
  if (filter.tag !== undefined) {
    // `tags @> ARRAY[tag]`, which the GIN index on tags serves.
    conditions.push(sql`${contexts.tags} @> ARRAY[${filter.tag}]::text[]`);
  }
  return conditions;
}

/** The ContextStore port on a migrated Database. */
export class PgContextStore implements ContextStore {
  private readonly db: AppDatabase;
  private readonly clock: Clock;

  constructor(database: Database, options: PgContextStoreOptions = {}) {
    this.db = database.db;
    this.clock = options.clock ?? systemClock;
  }

  async transaction<T>(call: StoreCall, work: (tx: ContextTx) => Promise<T>): Promise<T> {
    return this.inTransaction(call, (tx) => work(new PgContextTx(tx, call, this.clock)));
  }

  async getContext(call: StoreCall, contextId: string, options: { readonly withState: boolean }): Promise<Context | null> {
    return this.read(call, async (q) => {
      const rows = options.withState
        ? await q.select(contextColumnsWithState).from(contexts).where(eq(contexts.contextId, contextId))
        : await q.select(contextColumnsWithoutState).from(contexts).where(eq(contexts.contextId, contextId));
      const row = rows[0];
      return row === undefined ? null : contextFromRow(row);
    });
  }

  async listContexts(call: StoreCall, query: ContextListQuery): Promise<ContextListResult> {
    const matching = [readableBy(query.principal), ...filterConditions(query.filter)];
    const page = (q: Executor) =>
      q
        .select(contextColumnsWithoutState)
        .from(contexts)
        .where(and(...matching, ...(query.after === undefined ? [] : [olderThan(query.after)])))
        .orderBy(desc(contexts.createdAt), desc(contexts.contextId))
        .limit(query.limit);
    const total = (q: Executor) => q.select({ n: count() }).from(contexts).where(and(...matching));
    return this.read(call, async (q) => {
      // Outside a transaction postgres.js runs the two on two connections at once; PGlite queues them.
      const [rows, totals] = await Promise.all([page(q), total(q)]);
      return { contexts: rows.map(contextFromRow), totalSize: totals[0]?.n ?? 0 };
    });
  }

  async contextStatistics(call: StoreCall, principal: string): Promise<StatisticsGroup[]> {
    return this.read(call, async (q) => {
      const rows = await q
        .select({
          status: contexts.status,
          lifecycleStage: contexts.lifecycleStage,
          type: contexts.type,
          contexts: count(),
          // sum(integer) is a bigint, which drivers return as a string: make it a number here.
          participants: sql<number>`coalesce(sum(${contexts.participantCount}), 0)`.mapWith(Number),
          maxParticipants: sql<number>`coalesce(${max(contexts.participantCount)}, 0)`.mapWith(Number),
        })
        .from(contexts)
        .where(readableBy(principal))
        .groupBy(contexts.status, contexts.lifecycleStage, contexts.type)
        .orderBy(contexts.status, contexts.lifecycleStage, contexts.type);
      return rows.map((r) => ({
        status: r.status as ContextStatus,
        lifecycleStage: r.lifecycleStage as LifecycleStage,
        type: r.type as ContextType,
        contexts: r.contexts,
        participants: r.participants,
        maxParticipants: r.maxParticipants,
      }));
    });
  }

  async listEvents(call: StoreCall, contextId: string, from: EventPosition, limit: number): Promise<ContextEvent[]> {
    return this.read(call, async (q) => {
      const rows = await q
        .select()
        .from(contextEvents)
        .where(
          and(
            eq(contextEvents.contextId, contextId),
            sql`(${contextEvents.revision}, ${contextEvents.seq}) >= (${from.revision}::bigint, ${from.seq}::integer)`,
          ),
        )
        .orderBy(asc(contextEvents.revision), asc(contextEvents.seq))
        .limit(limit);
      return rows.map(eventFromRow);
    });
  }

  /**
   * A read outside any caller's transaction. With a deadline it runs in a short read-only
   * transaction, the only scope a local statement_timeout can have; without one, directly.
   */
  private async read<T>(call: StoreCall, work: (q: Executor) => Promise<T>): Promise<T> {
    if (call.deadline !== undefined) return this.inTransaction(call, work, { accessMode: "read only" });
    try {
      return await work(this.db);
    } catch (error) {
      throw toStoreError(error);
    }
  }

  /**
   * One transaction honouring the call's deadline. Every query inside must use `tx`: PGlite has
   * a single connection, and a query on `db` would wait for this transaction forever.
   */
  private async inTransaction<T>(
    call: StoreCall,
    work: (tx: AppTransaction) => Promise<T>,
    config?: PgTransactionConfig,
  ): Promise<T> {
    // A deadline already gone: fail without taking a connection or touching the database.
    if (call.deadline !== undefined) remainingMs(call);
    try {
      return await this.db.transaction(async (tx) => {
        if (call.deadline !== undefined) {
          // Measured again here: waiting for a pooled connection and BEGIN took some of it.
          const left = remainingMs(call);
          await tx.execute(sql`select set_config('statement_timeout', ${String(left)}, true)`);
        }
        return work(tx);
      }, config);
    } catch (error) {
      throw toStoreError(error);
    }
  }
}

/**
 * The ContextTx port on one drizzle transaction. Each method checks the deadline before its query
 * (statement_timeout was set from the time left when the transaction began, so this keeps a long
 * transaction from running well past it).
 */
class PgContextTx implements ContextTx {
  constructor(
    private readonly tx: AppTransaction,
    private readonly call: StoreCall,
    private readonly clock: Clock,
  ) {}

  private checkDeadline(): void {
    if (this.call.deadline !== undefined && Date.now() >= this.call.deadline) {
      throw new AppError("TIMEOUT", "the deadline passed before the database finished the work");
    }
  }

  /** Runs one statement, classifying its failure here so `work` sees an AppError (CONTEXT_EXISTS…). */
  private async run<T>(statement: () => Promise<T>): Promise<T> {
    this.checkDeadline();
    try {
      return await statement();
    } catch (error) {
      throw toStoreError(error);
    }
  }

  async lockContext(contextId: string): Promise<Context | null> {
    const rows = await this.run(() =>
      this.tx.select(contextColumnsWithoutState).from(contexts).where(eq(contexts.contextId, contextId)).for("update"),
    );
    const row = rows[0];
    return row === undefined ? null : contextFromRow(row);
  }

  async insertContext(context: Context & { readonly sharedState: SharedState }): Promise<void> {
    await this.run(() => this.tx.insert(contexts).values(contextInsertValues(context)));
  }

  async updateContext(context: Context): Promise<void> {
    const terminatedAt =
      context.status === "TERMINATED"
        ? // Keep the first termination time: cleanup counts its delay from there.
          sql`coalesce(${contexts.terminatedAt}, ${context.updatedAt.toISOString()}::timestamptz)`
        : null;
    const updated = await this.run(() =>
      this.tx
        .update(contexts)
        .set({ ...contextUpdateValues(context), terminatedAt })
        .where(eq(contexts.contextId, context.contextId))
        .returning({ contextId: contexts.contextId }),
    );
    // The caller locked the row first, so it cannot have vanished; say so loudly if it did.
    if (updated.length === 0) throw AppError.contextNotFound(context.contextId);
  }

  async deleteContext(contextId: string): Promise<void> {
    await this.run(() => this.tx.delete(contexts).where(eq(contexts.contextId, contextId)));
  }

  async appendEvents(events: readonly ContextEvent[]): Promise<void> {
    if (events.length === 0) return;
    await this.run(() => this.tx.insert(contextEvents).values(events.map(eventInsertValues)));
  }

  async claimRequest(key: RequestKey): Promise<StoredResult | null> {
    const now = this.clock.now();
    const expiredBefore = new Date(now.getTime() - REQUEST_KEY_TTL_MS);
    // A new key inserts; a key older than the TTL is taken over (its old result dropped). A key
    // claimed by a transaction still running blocks this insert until that one ends: if it
    // commits, the conflict path below reads its result; if it rolls back, this claim wins.
    const claimed = await this.run(() =>
      this.tx
        .insert(requestKeys)
        .values({ principal: key.principal, requestId: key.requestId, method: key.method, result: null, createdAt: now })
        .onConflictDoUpdate({
          target: [requestKeys.principal, requestKeys.requestId],
          set: { method: sql`excluded.method`, result: sql`null`, createdAt: sql`excluded.created_at` },
          setWhere: sql`${requestKeys.createdAt} < ${expiredBefore.toISOString()}::timestamptz`,
        })
        .returning({ principal: requestKeys.principal }),
    );
    if (claimed.length > 0) return null;
    const rows = await this.run(() =>
      this.tx
        .select({ method: requestKeys.method, result: requestKeys.result })
        .from(requestKeys)
        .where(and(eq(requestKeys.principal, key.principal), eq(requestKeys.requestId, key.requestId))),
    );
    const row = rows[0];
    // ON CONFLICT locked the row, so it is there until this transaction ends.
    if (row === undefined) throw new AppError("INTERNAL_ERROR", "an idempotency key vanished while locked");
    return { method: row.method, result: row.result ?? null };
  }

  async saveRequestResult(key: RequestKey, result: JsonValue): Promise<void> {
    await this.run(() =>
      this.tx
        .update(requestKeys)
        .set({ result })
        .where(and(eq(requestKeys.principal, key.principal), eq(requestKeys.requestId, key.requestId))),
    );
  }
}
