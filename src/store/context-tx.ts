/**
 * The ContextTx port (service/ports.ts) on one drizzle transaction: contexts, shared state and
 * its snapshots (SQL in state-queries.ts), events, request keys and participants. Statements fail as AppErrors (toStoreError), so the service's work sees
 * CONTEXT_EXISTS or PARTICIPANT_ALREADY_EXISTS and may decide what to do before the rollback.
 */
import { and, eq, sql } from "drizzle-orm";
import type { LockConfig } from "drizzle-orm/pg-core";
import { AppError } from "../domain/app-error.js";
import type { Context } from "../domain/context.js";
import type { ContextEvent } from "../domain/event.js";
import type { JsonValue } from "../domain/json.js";
import type { Participant } from "../domain/participant.js";
import type { SharedState } from "../domain/shared-state.js";
import type { Clock, ContextTx, RequestKey, StoreCall, StoredResult } from "../service/ports.js";
import {
  contextColumnsWithoutState,
  contextColumnsWithState,
  contextFromRow,
  contextInsertValues,
  contextUpdateValues,
  eventInsertValues,
} from "./context-rows.js";
import type { AppTransaction } from "./executor.js";
import {
  deleteParticipantRows,
  insertParticipantRows,
  selectExpired,
  selectLapsed,
  selectLatestPresence,
  selectMember,
  selectParticipant,
  updateParticipantRow,
} from "./participant-queries.js";
import { contextEvents, contexts, requestKeys } from "./schema.js";
import { toStoreError } from "./sql-errors.js";
import { compactContextHistory, insertStateSnapshot, writeSharedState } from "./state-queries.js";

/** How long an idempotency key holds: a retry after this does the work again. */
const REQUEST_KEY_TTL_MS = 24 * 60 * 60 * 1000;

/**
 * The ContextTx port on one drizzle transaction. Each method checks the deadline before its query
 * (statement_timeout was set from the time left when the transaction began, so this keeps a long
 * transaction from running well past it).
 */
export class PgContextTx implements ContextTx {
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

  async lockContext(
    contextId: string,
    options: { readonly skipLocked?: boolean; readonly withState?: boolean } = {},
  ): Promise<Context | null> {
    // SKIP LOCKED: a sweeper passes over a context another transaction (a request, or a
    // sweeper in another instance) holds, rather than queueing behind it.
    const lock: LockConfig = options.skipLocked === true ? { skipLocked: true } : {};
    const where = eq(contexts.contextId, contextId);
    const rows = await this.run(() =>
      options.withState === true
        ? this.tx.select(contextColumnsWithState).from(contexts).where(where).for("update", lock)
        : this.tx.select(contextColumnsWithoutState).from(contexts).where(where).for("update", lock),
    );
    const row = rows[0];
    return row === undefined ? null : contextFromRow(row);
  }

  async updateSharedState(contextId: string, state: SharedState): Promise<void> {
    await this.run(() => writeSharedState(this.tx, contextId, state));
  }

  async saveStateSnapshot(contextId: string, revision: number, state: SharedState): Promise<void> {
    await this.run(() => insertStateSnapshot(this.tx, { contextId, revision, state, createdAt: this.clock.now() }));
  }

  async compactHistory(contextId: string, upTo: number): Promise<void> {
    await this.run(() => compactContextHistory(this.tx, contextId, upTo));
  }

  async insertContext(context: Context & { readonly sharedState: SharedState }): Promise<void> {
    await this.run(() => this.tx.insert(contexts).values(contextInsertValues(context)));
  }

  async updateContext(context: Context): Promise<void> {
    const updated = await this.run(() =>
      this.tx
        .update(contexts)
        .set(contextUpdateValues(context))
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

  async lockParticipant(contextId: string, participantId: string): Promise<Participant | null> {
    return this.run(() => selectParticipant(this.tx, contextId, participantId, { lock: true }));
  }

  async findMember(contextId: string, agentId: string): Promise<Participant | null> {
    return this.run(() => selectMember(this.tx, contextId, agentId));
  }

  async insertParticipants(participants: readonly Participant[]): Promise<void> {
    await this.run(() => insertParticipantRows(this.tx, participants));
  }

  async updateParticipant(participant: Participant): Promise<void> {
    await this.run(() => updateParticipantRow(this.tx, participant));
  }

  async deleteParticipants(contextId: string, participantIds: readonly string[]): Promise<void> {
    await this.run(() => deleteParticipantRows(this.tx, contextId, participantIds));
  }

  async lapsedParticipants(contextId: string, now: Date, limit: number): Promise<Participant[]> {
    return this.run(() => selectLapsed(this.tx, contextId, now, limit));
  }

  async expiredParticipants(contextId: string, cutoff: Date, limit: number): Promise<Participant[]> {
    return this.run(() => selectExpired(this.tx, contextId, cutoff, limit));
  }

  async latestPresence(contextId: string, now: Date): Promise<Date | null> {
    return this.run(() => selectLatestPresence(this.tx, contextId, now));
  }
}
