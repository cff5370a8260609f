/**
 * The ContextTx port (service/ports.ts) on one SqlTransaction: a write's locked path and the
 * sweepers'. Its first batch sends BEGIN with the locked base read; finish() sends the change
 * statement with COMMIT.
 */
import type { Participant } from "../domain/participant.js";
import type { SharedState } from "../domain/shared-state.js";
import type { ApplyOutcome, BaseQuery, Clock, ContextChange, ContextTx, LockedBase, RequestKey } from "../service/ports.js";
import { AppError } from "../domain/app-error.js";
import { baseFromRow, baseStatement } from "./base-sql.js";
import { changeOutcome, changeStatement, REQUEST_KEY_TAKEN } from "./change-sql.js";
import { STORED_RESULT, storedResultParams } from "./context-sql.js";
import { EXPIRED, LAPSED, LATEST_PRESENCE } from "./participant-sql.js";
import { participantFromRow } from "./rows.js";
import type { Row, SqlTransaction } from "./sql-client.js";
import { sqlStateOf } from "./sql-errors.js";
import { COMPACT, INSERT_SNAPSHOT, KEEP_ALIVE, snapshotParams } from "./state-sql.js";
import type { JsonValue } from "../domain/json.js";

export class PgContextTx implements ContextTx {
  constructor(
    private readonly tx: SqlTransaction,
    private readonly clock: Clock,
    /** Told of each applied change once it committed (the store's onCommit). */
    private readonly applied: (change: ContextChange) => void,
  ) {}

  async lockBase(query: BaseQuery & { readonly skipLocked?: boolean }, request?: RequestKey): Promise<LockedBase> {
    // The key is read after the lock: a duplicate of this call that held the lock has committed by then.
    const [baseRows, keyRows] = await this.tx.run([
      baseStatement(query, query.skipLocked === true ? "skip" : "update"),
      ...(request === undefined ? [] : [[STORED_RESULT, storedResultParams(request, this.clock.now())] as const]),
    ]);
    const key = keyRows?.[0];
    return {
      base: baseFromRow(query, baseRows?.[0]),
      prior: key === undefined ? null : { method: key["method"] as string, result: (key["result"] ?? null) as JsonValue },
    };
  }

  async finish(change: ContextChange): Promise<ApplyOutcome> {
    let rows: Row[][];
    try {
      rows = await this.tx.commit([changeStatement(change, this.clock.now())]);
    } catch (error) {
      if (sqlStateOf(error) === REQUEST_KEY_TAKEN) return { applied: false, reason: "request", prior: null };
      throw error;
    }
    const outcome = changeOutcome(change, rows[0]?.[0]);
    if (outcome.applied) this.applied(change);
    return outcome;
  }

  async keepAlive(contextId: string, lastActivityAt: Date, expiresAt: Date | null): Promise<void> {
    await this.tx.run([[KEEP_ALIVE, [contextId, lastActivityAt.toISOString(), expiresAt?.toISOString() ?? null]]]);
  }

  async saveStateSnapshot(contextId: string, revision: number, state: SharedState): Promise<void> {
    await this.tx.run([[INSERT_SNAPSHOT, snapshotParams(contextId, revision, state, this.clock.now())]]);
  }

  async compactHistory(contextId: string, upTo: number): Promise<void> {
    const [rows] = await this.tx.run([[COMPACT, [contextId, upTo]]]);
    // The caller locked the row first, so it cannot have vanished; say so loudly if it did.
    if (Number(rows?.[0]?.["updated"] ?? 0) === 0) throw AppError.contextNotFound(contextId);
  }

  async lapsedParticipants(contextId: string, now: Date, limit: number): Promise<Participant[]> {
    const [rows] = await this.tx.run([[LAPSED, [contextId, now.toISOString(), limit]]]);
    return (rows ?? []).map(participantFromRow);
  }

  async expiredParticipants(contextId: string, cutoff: Date, limit: number): Promise<Participant[]> {
    const [rows] = await this.tx.run([[EXPIRED, [contextId, cutoff.toISOString(), limit]]]);
    return (rows ?? []).map(participantFromRow);
  }

  async latestPresence(contextId: string, now: Date): Promise<Date | null> {
    const [rows] = await this.tx.run([[LATEST_PRESENCE, [contextId, now.toISOString()]]]);
    const latest = rows?.[0]?.["latest"];
    return latest === null || latest === undefined ? null : new Date(Number(latest));
  }
}
