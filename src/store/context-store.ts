/**
 * The ContextStore port (service/ports.ts) on Postgres or PGlite. Every method is one statement,
 * or one transaction whose statements go in batches (sql-client.ts), with text written once per
 * shape in the *-sql.ts files beside this one; rows map to domain objects in rows.ts. drizzle
 * remains the schema, the migrations and the sweepers' candidate queries (sweep-queries.ts).
 *
 * Writes: apply() sends a change as one statement that applies only while the context is at the
 * revision the change was decided at (change-sql.ts); transaction() is the locked path.
 *
 * Deadlines: a statement still running when its call's deadline passes is cancelled (SQLSTATE
 * 57014 → TIMEOUT); no transaction is needed to carry a statement_timeout.
 *
 * Read replicas: the lists, the statistics and the event trail run on a replica (read-replicas.ts)
 * when the call allows it (StoreCall.replicaOk) and one is in rotation, deadline and all, the same
 * way as on the primary; everything else — writes, reads that decide a write — on the primary.
 */
import type { Context, ContextStatus, ContextType, LifecycleStage } from "../domain/context.js";
import type { ContextEvent, EventPosition } from "../domain/event.js";
import type { JsonValue } from "../domain/json.js";
import type { Participant } from "../domain/participant.js";
import {
  systemClock,
  type ApplyOutcome,
  type BaseQuery,
  type Clock,
  type ContextChange,
  type ContextListQuery,
  type ContextListResult,
  type ContextStore,
  type ContextTx,
  type LeaseRenewal,
  type ParticipantListQuery,
  type ParticipantListResult,
  type RequestKey,
  type StateHistory,
  type StatisticsGroup,
  type StoreCall,
  type StoredResult,
  type SweepCandidates,
  type WriteBase,
} from "../service/ports.js";
import { baseFromRow, baseStatement } from "./base-sql.js";
import { changeOutcome, changeStatement, eventRowsJson, REQUEST_KEY_TAKEN } from "./change-sql.js";
import { committedEvents, headsOf, type CommittedEvents } from "./committed-events.js";
import {
  GET_CONTEXT,
  GET_CONTEXT_WITH_STATE,
  HEADS,
  LIST_EVENTS,
  listContextsStatement,
  STATISTICS,
  STORED_RESULT,
  storedResultParams,
} from "./context-sql.js";
import { PgContextTx } from "./context-tx.js";
import type { Database } from "./database.js";
import { FIND_MEMBER, GET_PARTICIPANT, listParticipantsStatement, RENEW_LEASE, renewLeaseParams } from "./participant-sql.js";
import type { ReadReplicas } from "./read-replicas.js";
import { contextFromRow, eventFromRow, participantFromRow } from "./rows.js";
import type { Row, SqlClient } from "./sql-client.js";
import { sqlStateOf, toStoreError } from "./sql-errors.js";
import { STATE_HISTORY, stateHistoryFromRow } from "./state-sql.js";
import { PgSweepCandidates } from "./sweep-queries.js";
import type { WorkQueue } from "./work-queue.js";

export type { CommittedEvents };

export interface PgContextStoreOptions {
  /** The time of request-key claims; tests move it to expire keys. */
  readonly clock?: Clock;
  /** First come, first served admission to the primary (work-queue.ts); none → every call goes straight to the driver. */
  readonly queue?: WorkQueue;
  /**
   * Called after each change has committed, with the newest revision per context: the app rings
   * the watch doorbell with it, and hands `committed` (the events themselves) to this instance's
   * watch hub, which then need not read them back. Never called for a change that did not apply;
   * an exception it throws is swallowed (the commit already happened).
   */
  readonly onCommit?: (heads: ReadonlyMap<string, number>, committed: CommittedEvents) => void;
}

function first<T>(rows: readonly Row[], map: (row: Row) => T): T | null {
  const row = rows[0];
  return row === undefined ? null : map(row);
}

/** The ContextStore port on a migrated Database. */
export class PgContextStore implements ContextStore {
  private readonly sql: SqlClient;
  private readonly clock: Clock;
  private readonly onCommit: PgContextStoreOptions["onCommit"];
  private readonly replicas: ReadReplicas<SqlClient> | undefined;
  private readonly queue: WorkQueue | undefined;
  private operations = 0;

  readonly sweep: SweepCandidates;

  constructor(database: Database, options: PgContextStoreOptions = {}) {
    this.sql = database.sql;
    this.replicas = database.replicas;
    this.clock = options.clock ?? systemClock;
    this.onCommit = options.onCommit;
    this.queue = options.queue;
    this.sweep = new PgSweepCandidates(database.db, database.sql);
  }

  /**
   * Reads and transactions running now, each holding (or waiting for) a database connection: what
   * the metrics show as pool use, since postgres.js keeps its pool's figures private.
   */
  get operationsInFlight(): number {
    return this.operations;
  }

  async getContext(call: StoreCall, contextId: string, options: { readonly withState: boolean }): Promise<Context | null> {
    const rows = await this.read(call, options.withState ? GET_CONTEXT_WITH_STATE : GET_CONTEXT, [contextId]);
    return first(rows, contextFromRow);
  }

  async listContexts(call: StoreCall, query: ContextListQuery): Promise<ContextListResult> {
    const [text, params] = listContextsStatement(query);
    const [row] = await this.replicaRead(call, text, params);
    const total = row?.["total"];
    return {
      contexts: ((row?.["contexts"] ?? []) as Row[]).map(contextFromRow),
      totalSize: total === null || total === undefined ? undefined : Number(total),
    };
  }

  async contextStatistics(call: StoreCall, principal: string): Promise<StatisticsGroup[]> {
    const rows = await this.replicaRead(call, STATISTICS, [principal]);
    return rows.map((r) => ({
      status: r["status"] as ContextStatus,
      lifecycleStage: r["lifecycle_stage"] as LifecycleStage,
      type: r["type"] as ContextType,
      contexts: Number(r["contexts"]),
      participants: Number(r["participants"]),
      maxParticipants: Number(r["max_participants"]),
    }));
  }

  async listEvents(call: StoreCall, contextId: string, from: EventPosition, limit: number): Promise<ContextEvent[]> {
    const rows = await this.replicaRead(call, LIST_EVENTS, [contextId, from.revision, from.seq, limit]);
    return rows.map(eventFromRow);
  }

  async findMember(call: StoreCall, contextId: string, agentId: string): Promise<Participant | null> {
    return first(await this.read(call, FIND_MEMBER, [contextId, agentId]), participantFromRow);
  }

  async getParticipant(call: StoreCall, contextId: string, participantId: string): Promise<Participant | null> {
    return first(await this.read(call, GET_PARTICIPANT, [contextId, participantId]), participantFromRow);
  }

  async listParticipants(call: StoreCall, query: ParticipantListQuery): Promise<ParticipantListResult> {
    const [text, params] = listParticipantsStatement(query);
    const rows = await this.replicaRead(call, text, params);
    return {
      participants: rows.filter((r) => r["participant_id"] !== null).map(participantFromRow),
      totalSize: Number(rows[0]?.["total"] ?? 0),
    };
  }

  async renewLease(call: StoreCall, renewal: LeaseRenewal): Promise<Participant | null> {
    return first(await this.read(call, RENEW_LEASE, renewLeaseParams(renewal)), participantFromRow);
  }

  async stateHistory(call: StoreCall, contextId: string, revision: number): Promise<StateHistory | null> {
    return stateHistoryFromRow((await this.read(call, STATE_HISTORY, [contextId, revision]))[0]);
  }

  async heads(call: StoreCall, contextIds: readonly string[]): Promise<Map<string, number>> {
    const heads = new Map<string, number>();
    if (contextIds.length === 0) return heads;
    for (const row of await this.read(call, HEADS, [`{${contextIds.join(",")}}`])) {
      heads.set(row["context_id"] as string, Number(row["revision"]));
    }
    return heads;
  }

  async loadBase(call: StoreCall, query: BaseQuery): Promise<WriteBase | null> {
    const [text, params] = baseStatement(query, "none");
    return baseFromRow(query, (await this.read(call, text, params))[0]);
  }

  async storedResult(call: StoreCall, key: RequestKey): Promise<StoredResult | null> {
    return first(await this.read(call, STORED_RESULT, storedResultParams(key, this.clock.now())), (r) => ({
      method: r["method"] as string,
      result: (r["result"] ?? null) as JsonValue,
    }));
  }

  async apply(call: StoreCall, change: ContextChange): Promise<ApplyOutcome> {
    const [text, params] = changeStatement(change, this.clock.now());
    let rows: Row[];
    try {
      rows = await this.read(call, text, params);
    } catch (error) {
      if (sqlStateOf(error) === REQUEST_KEY_TAKEN) return { applied: false, reason: "request", prior: null };
      throw error;
    }
    const outcome = changeOutcome(change, rows[0]);
    if (outcome.applied) this.committed([change]);
    return outcome;
  }

  async applyAll(call: StoreCall, changes: readonly ContextChange[]): Promise<ApplyOutcome[]> {
    const now = this.clock.now();
    const results = await this.admitted(call, this.sql, () =>
      this.sql.transaction(call.deadline, (tx) => tx.commit(changes.map((c) => changeStatement(c, now)))),
    ).catch((error: unknown) => {
      // A key taken by a concurrent call aborted the batch (all or nothing): the caller reads it and retries.
      if (sqlStateOf(error) === REQUEST_KEY_TAKEN) return null;
      throw error;
    });
    if (results === null) return changes.map(() => ({ applied: false, reason: "request", prior: null }));
    const outcomes = changes.map((c, i) => changeOutcome(c, results[i]?.[0]));
    this.committed(changes.filter((_, i) => outcomes[i]!.applied));
    return outcomes;
  }

  async transaction<T>(call: StoreCall, work: (tx: ContextTx) => Promise<T>): Promise<T> {
    return this.admitted(call, this.sql, () =>
      this.sql.transaction(call.deadline, (tx) => work(new PgContextTx(tx, this.clock, (change) => this.committed([change])))),
    );
  }

  /** Tells onCommit about committed changes; its failure must not undo a reply (the doorbell is only a hint). */
  private committed(changes: readonly ContextChange[]): void {
    if (this.onCommit === undefined || changes.length === 0) return;
    const events = changes.flatMap((c) => c.events);
    // One change per context (a batch creates distinct ones): its events are all that context's.
    const rows = new Map(changes.map((c) => [c.contextId, eventRowsJson(c)]));
    try {
      this.onCommit(headsOf(events), committedEvents(events, rows.size === changes.length ? rows : undefined));
    } catch {
      // The change is committed; a failing hook must not turn it into an error.
    }
  }

  /**
   * A read on a read replica when the call allows it and one is in rotation; on the primary
   * otherwise, and (once) when the replica fails it with a connection-class error.
   */
  private async replicaRead(call: StoreCall, text: string, params: readonly unknown[]): Promise<Row[]> {
    const replicas = this.replicas;
    if (call.replicaOk !== true || replicas === undefined) return this.read(call, text, params);
    return replicas.read(
      (replica) => this.read(call, text, params, replica),
      () => this.read(call, text, params),
    );
  }

  /** One statement on `on` (the primary unless given a replica), cancelled at the call's deadline. */
  private read(call: StoreCall, text: string, params: readonly unknown[], on: SqlClient = this.sql): Promise<Row[]> {
    return this.admitted(call, on, () => on.query(text, params, call.deadline));
  }

  /**
   * Runs one operation, counted in operationsInFlight; on the primary it first waits for its turn
   * in the work queue (work-queue.ts). Replicas have pools of their own and are not queued.
   */
  private async admitted<T>(call: StoreCall, on: SqlClient, work: () => Promise<T>): Promise<T> {
    this.operations += 1;
    try {
      return await (on === this.sql && this.queue !== undefined ? this.queue.run(call.deadline, work) : work());
    } catch (error) {
      throw toStoreError(error);
    } finally {
      this.operations -= 1;
    }
  }
}
