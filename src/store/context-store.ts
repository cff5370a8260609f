/**
 * The ContextStore port (service/ports.ts) on Postgres or PGlite, through drizzle's query builder.
 * This file holds the contexts' reads and the transaction plumbing; the transaction's methods are
 * in context-tx.ts, participants' SQL in participant-queries.ts, shared state's in
 * state-queries.ts, the sweepers' in sweep-queries.ts, and rows ⇄ domain objects in
 * context-rows.ts / participant-rows.ts.
 *
 * Deadlines: a call with a deadline runs in a transaction whose statement_timeout is the time left
 * (set_config(…, is_local = true) lasts until the transaction ends), so the database itself
 * cancels work still running when the deadline passes (SQLSTATE 57014 → TIMEOUT); a JS timer could
 * only stop waiting, not stop the database.
 *
 * Read replicas: the lists, the statistics and the event trail run on a replica (read-replicas.ts)
 * when the call allows it (StoreCall.replicaOk) and one is in rotation, deadline and all, the same
 * way as on the primary; everything else — transactions, reads that decide a write — on the primary.
 */
import { Buffer } from "node:buffer";
import { and, asc, count, desc, eq, like, max, or, sql, type SQL } from "drizzle-orm";
import type { PgTransactionConfig } from "drizzle-orm/pg-core";
import { AppError } from "../domain/app-error.js";
import type { Context, ContextFilter, ContextStatus, ContextType, LifecycleStage } from "../domain/context.js";
import type { ContextEvent, EventPosition } from "../domain/event.js";
import type { JsonValue } from "../domain/json.js";
import type { Participant } from "../domain/participant.js";
import type { SharedState } from "../domain/shared-state.js";
import {
  systemClock,
  type Clock,
  type ContextListQuery,
  type ContextListResult,
  type ContextStore,
  type ContextTx,
  type LeaseRenewal,
  type ParticipantListQuery,
  type ParticipantListResult,
  type StatisticsGroup,
  type StoreCall,
  type SweepCandidates,
} from "../service/ports.js";
import {
  contextColumnsWithoutState,
  contextColumnsWithState,
  contextFromRow,
  countContexts,
  eventFromRow,
  eventInsertValues,
  type EventRow,
} from "./context-rows.js";
import { PgContextTx } from "./context-tx.js";
import type { AppDatabase, Database } from "./database.js";
import type { AppTransaction, Executor } from "./executor.js";
import { listParticipantRows, renewLeaseRow, selectMember, selectParticipant } from "./participant-queries.js";
import type { ReadReplicas } from "./read-replicas.js";
import { contextEvents, contexts, participants } from "./schema.js";
import { toStoreError } from "./sql-errors.js";
import { selectHeads, selectSnapshotAtOrBefore, selectStateChanges } from "./state-queries.js";
import { PgSweepCandidates } from "./sweep-queries.js";
import type { WorkQueue } from "./work-queue.js";

export interface PgContextStoreOptions {
  /** The time of request-key claims; tests move it to expire keys. */
  readonly clock?: Clock;
  /** First come, first served admission to the primary (work-queue.ts); none → every call goes straight to the driver. */
  readonly queue?: WorkQueue;
  /**
   * Called after each transaction that appended events has committed, with the newest revision
   * appended per context: the app rings the watch doorbell with it, and hands `committed` (the
   * events themselves) to this instance's watch hub, which then need not read them back. Never
   * called for a rollback; an exception it throws is swallowed (the commit already happened).
   */
  readonly onCommit?: (heads: ReadonlyMap<string, number>, committed: CommittedEvents) => void;
}

/**
 * The events a committed transaction appended, per context. A transaction writes every event of
 * the revisions it makes, so these are whole revisions.
 */
export interface CommittedEvents {
  /**
   * `contextId`'s events in (revision, seq) order, exactly as listEvents would read them back:
   * fresh copies through the same row mapping (and the payload through a jsonb-like round trip),
   * so a watcher gets the same message whichever way its feed learnt them; frozen, since every
   * watcher of the context shares them. Built on first ask: commits no one watches cost nothing.
   */
  of(contextId: string): readonly ContextEvent[];
}

/** `tx` with appendEvents also noting the newest revision appended per context, and the events, for onCommit. */
function recordingHeads(tx: ContextTx, heads: Map<string, number>, appended: ContextEvent[]): ContextTx {
  const appendEvents = async (events: Parameters<ContextTx["appendEvents"]>[0]): Promise<void> => {
    await tx.appendEvents(events);
    for (const e of events) if (e.revision > (heads.get(e.contextId) ?? 0)) heads.set(e.contextId, e.revision);
    appended.push(...events);
  };
  return new Proxy(tx, {
    get(target, property) {
      if (property === "appendEvents") return appendEvents;
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === "function" ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

function committedEvents(appended: readonly ContextEvent[]): CommittedEvents {
  const built = new Map<string, readonly ContextEvent[]>();
  return {
    of(contextId) {
      let events = built.get(contextId);
      if (events === undefined) {
        events = appended
          .filter((e) => e.contextId === contextId)
          .sort((a, b) => a.revision - b.revision || a.seq - b.seq)
          .map(asReadBack);
        built.set(contextId, events);
      }
      return events;
    },
  };
}

/**
 * `event` as listEvents returns it once stored: eventInsertValues → (jsonb) → eventFromRow. The
 * service's own object may differ from that (a context payload carrying its shared state, a
 * Struct's key order, an undefined field), and a watcher must see the same either way.
 */
function asReadBack(event: ContextEvent): ContextEvent {
  const row = eventInsertValues(event);
  const stored: EventRow = { ...row, occurredAt: new Date(row.occurredAt.getTime()), payload: asJsonb(row.payload) };
  return deepFreeze(eventFromRow(stored));
}

/**
 * A JSON value as it comes back from a jsonb column: what JSON.stringify sends (undefined dropped,
 * dates as strings, -0 as 0), each object's keys in jsonb's order — shorter first, then bytewise
 * in UTF-8 — which then go through JSON.parse as the drivers' do. Numbers come back as the same
 * doubles (jsonb keeps their decimal value exactly, if not always the same text).
 */
function asJsonb(value: JsonValue): JsonValue {
  return JSON.parse(JSON.stringify(value), (_key, v: unknown) => {
    if (v === null || typeof v !== "object" || Array.isArray(v)) return v;
    const entries = Object.entries(v).sort(([a], [b]) => jsonbKeyOrder(a, b));
    // fromEntries defines own properties: a "__proto__" key stays a key, as JSON.parse made it.
    return Object.fromEntries(entries);
  }) as JsonValue;
}

function jsonbKeyOrder(a: string, b: string): number {
  const x = Buffer.from(a, "utf8");
  const y = Buffer.from(b, "utf8");
  return x.length - y.length || Buffer.compare(x, y);
}

/** Freezes `value` and everything reachable from it (dates included: their fields, not their time). */
function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
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
 * What `principal` may read, mirroring domain/permissions.ts: the owner reads its contexts, anyone
 * reads PUBLIC ones, and a member reads the contexts it belongs to (every role grants READ).
 *
 * Membership is `context_id IN (the agent's contexts)` rather than a correlated EXISTS: under an
 * OR the planner cannot turn either into a join, but it runs an uncorrelated IN once (through
 * participants_agent_context_idx) and probes a hash per context row, where EXISTS would run an
 * index lookup per row. Both mean the same.
 */
function readableBy(principal: string): SQL {
  return or(
    eq(contexts.owner, principal),
    eq(contexts.visibility, "PUBLIC"),
    sql`${contexts.contextId} in (select ${participants.contextId} from ${participants} where ${participants.agentId} = ${principal})`,
  ) as SQL;
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
  private readonly onCommit: PgContextStoreOptions["onCommit"];
  private readonly replicas: ReadReplicas<AppDatabase> | undefined;
  private readonly queue: WorkQueue | undefined;
  private operations = 0;

  readonly sweep: SweepCandidates;

  constructor(database: Database, options: PgContextStoreOptions = {}) {
    this.db = database.db;
    this.replicas = database.replicas;
    this.clock = options.clock ?? systemClock;
    this.onCommit = options.onCommit;
    this.queue = options.queue;
    this.sweep = new PgSweepCandidates(database.db);
  }

  /**
   * Reads and transactions running now, each holding (or waiting for) a database connection: what
   * the metrics show as pool use, since postgres.js keeps its pool's figures private. A list's page
   * and count, run at once on two connections, count as one.
   */
  get operationsInFlight(): number {
    return this.operations;
  }

  async transaction<T>(call: StoreCall, work: (tx: ContextTx) => Promise<T>): Promise<T> {
    const onCommit = this.onCommit;
    if (onCommit === undefined) return this.inTransaction(call, (tx) => work(new PgContextTx(tx, call, this.clock)));
    let heads = new Map<string, number>();
    let appended: ContextEvent[] = [];
    const result = await this.inTransaction(call, (tx) => {
      heads = new Map(); // per attempt: only the attempt that committed counts
      appended = [];
      return work(recordingHeads(new PgContextTx(tx, call, this.clock), heads, appended));
    });
    if (heads.size > 0) {
      try {
        onCommit(heads, committedEvents(appended));
      } catch {
        // The change is committed; a failing hook (the doorbell is only a hint) must not undo the reply.
      }
    }
    return result;
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
    return this.replicaRead(call, async (q) => {
      // Outside a transaction postgres.js runs the two on two connections at once; PGlite queues them.
      const [rows, totalSize] = await Promise.all([page(q), countContexts(q, and(...matching), query.count)]);
      return { contexts: rows.map(contextFromRow), totalSize };
    });
  }

  async contextStatistics(call: StoreCall, principal: string): Promise<StatisticsGroup[]> {
    return this.replicaRead(call, async (q) => {
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
    return this.replicaRead(call, async (q) => {
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

  async findMember(call: StoreCall, contextId: string, agentId: string): Promise<Participant | null> {
    return this.read(call, (q) => selectMember(q, contextId, agentId));
  }

  async getParticipant(call: StoreCall, contextId: string, participantId: string): Promise<Participant | null> {
    return this.read(call, (q) => selectParticipant(q, contextId, participantId, { lock: false }));
  }

  async listParticipants(call: StoreCall, query: ParticipantListQuery): Promise<ParticipantListResult> {
    return this.replicaRead(call, (q) => listParticipantRows(q, query));
  }

  async renewLease(call: StoreCall, renewal: LeaseRenewal): Promise<Participant | null> {
    // One UPDATE: atomic on its own, so it needs a transaction only to carry a deadline.
    if (call.deadline !== undefined) return this.inTransaction(call, (tx) => renewLeaseRow(tx, renewal));
    try {
      return await renewLeaseRow(this.db, renewal);
    } catch (error) {
      throw toStoreError(error);
    }
  }

  async stateSnapshotAtOrBefore(
    call: StoreCall,
    contextId: string,
    revision: number,
  ): Promise<{ revision: number; state: SharedState } | null> {
    return this.read(call, (q) => selectSnapshotAtOrBefore(q, contextId, revision));
  }

  async stateChangesBetween(call: StoreCall, contextId: string, after: number, upTo: number): Promise<ContextEvent[]> {
    return this.read(call, (q) => selectStateChanges(q, contextId, after, upTo));
  }

  async heads(call: StoreCall, contextIds: readonly string[]): Promise<Map<string, number>> {
    return this.read(call, (q) => selectHeads(q, contextIds));
  }

  /**
   * `read`, on a read replica when the call allows it and one is in rotation; on the primary
   * otherwise, and (once) when the replica fails it with a connection-class error.
   */
  private async replicaRead<T>(call: StoreCall, work: (q: Executor) => Promise<T>): Promise<T> {
    const replicas = this.replicas;
    if (call.replicaOk !== true || replicas === undefined) return this.read(call, work);
    return replicas.read(
      (replica) => this.read(call, work, replica),
      () => this.read(call, work),
    );
  }

  /**
   * A read outside any caller's transaction, on `db` (the primary unless given a replica). With a
   * deadline it runs in a short read-only transaction, the only scope a local statement_timeout
   * can have; without one, directly.
   */
  private async read<T>(call: StoreCall, work: (q: Executor) => Promise<T>, db: AppDatabase = this.db): Promise<T> {
    if (call.deadline !== undefined) return this.inTransaction(call, work, { accessMode: "read only" }, db);
    return this.admitted(call, db, () => work(db));
  }

  /**
   * Runs one operation, counted in operationsInFlight; on the primary it first waits for its turn
   * in the work queue (work-queue.ts). Replicas have pools of their own and are not queued.
   */
  private async admitted<T>(call: StoreCall, db: AppDatabase, work: () => Promise<T>): Promise<T> {
    this.operations += 1;
    try {
      return await (db === this.db && this.queue !== undefined ? this.queue.run(call.deadline, work) : work());
    } catch (error) {
      throw toStoreError(error);
    } finally {
      this.operations -= 1;
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
    db: AppDatabase = this.db,
  ): Promise<T> {
    // A deadline already gone: fail without taking a connection or touching the database.
    if (call.deadline !== undefined) remainingMs(call);
    return this.admitted(call, db, () =>
      db.transaction(async (tx) => {
        if (call.deadline === undefined) return work(tx);
        // Measured again here: waiting for a pooled connection and BEGIN took some of it.
        const left = remainingMs(call);
        // Sent now (`then` starts a drizzle query) and not awaited first: the connection runs
        // statements in the order they were sent, so the work's first statement already runs
        // under the timeout, and postgres.js writes both in one round trip instead of two.
        const timeout = tx.execute(sql`select set_config('statement_timeout', ${String(left)}, true)`).then(() => undefined);
        const [, result] = await Promise.all([timeout, work(tx)]);
        return result;
      }, config),
    );
  }
}
