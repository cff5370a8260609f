/**
 * How every change to an existing context is written, in as few round trips as it can be:
 *
 * 1. The base — the context and the participants the decision needs — comes from this instance's
 *    cache (kept from its own last write to the context) or is read in one statement.
 * 2. The use case decides the change on it, in TypeScript (permissions, expected_revision,
 *    capacity, the state machines: the domain's rules, in one place).
 * 3. apply() writes it in one statement that applies only while the context is still at the
 *    base's revision (and only if the request key is new). Every change to a context or its
 *    participants is a revision, so a change that applies was decided on the current rows.
 *
 * So a write to a context this instance wrote before costs one round trip, and a first write two.
 * When the base was stale (another instance, or a sweeper, changed the context meanwhile) — or a
 * decision made on a cached base was a refusal, which must not rest on a copy that may be a moment
 * old — the write goes the locked way: one transaction that locks the context row and reads the
 * base (one round trip), decides, then applies and commits (one more). The lock orders it behind
 * any other writer, so it always makes progress.
 *
 * Writes to one context from this instance go one at a time, each deciding on the base its
 * predecessor left in the cache: the database's row lock would order them anyway, and this way
 * they do not race each other into the locked path. A write waits for its predecessors as it
 * would for the database (store/work-queue.ts): at most `maxWaitMs`, then SERVICE_UNAVAILABLE, or
 * TIMEOUT when its deadline comes first — having done nothing. Without that bound, more writes to
 * one hot context than the database can take queued here without limit (an open loop of
 * AddParticipant on an embedded server answered after 8–19 s, none turned away).
 */
import { AppError } from "../domain/app-error.js";
import type { JsonValue } from "../domain/json.js";
import type { ApplyOutcome, BaseQuery, Clock, ContextChange, ContextStore, RequestKey, StoreCall, StoredResult, WriteBase } from "./ports.js";

/** A change as a use case decided it, and the call's answer once it is stored; or nothing to write. */
export type Decision<T> =
  | { readonly change: ContextChange; readonly answer: (stored: Extract<ApplyOutcome, { applied: true }>) => T }
  /** Nothing to write: the answer stands (confirmed under the lock when it was decided on a cached base). */
  | { readonly unchanged: T };

/** One write to one context. */
export interface WriteSpec<T> {
  readonly query: BaseQuery;
  /** request_id: a replay answers what the first call saved, whatever the base says now. */
  readonly request?: RequestKey;
  /** Decides the change on a base (the clock's `now`), or throws the AppError to answer with. */
  decide(base: WriteBase, now: Date): Decision<T>;
  /** The answer of a replay, from the result the first call saved (required with `request`). */
  replay?(result: JsonValue): T;
}

/** A replay's answer; a key first used by another method is refused, as it was before. */
export function replayed<T>(prior: StoredResult, key: RequestKey, replay: (result: JsonValue) => T): T {
  if (prior.method !== key.method) {
    throw AppError.validation([{ field: "request_id", description: `was already used for ${prior.method}` }]);
  }
  return replay(prior.result);
}

/** How long a write waits for the writes before it to the same context (DATABASE_QUEUE_TIMEOUT_MS in the app). */
export const DEFAULT_WRITE_WAIT_MS = 2_000;

export class Writes {
  /** Per context, the end of the chain of this instance's writes to it. */
  private readonly tails = new Map<string, Promise<void>>();

  constructor(
    private readonly store: ContextStore,
    private readonly clock: Clock,
    private readonly maxWaitMs: number = DEFAULT_WRITE_WAIT_MS,
  ) {}

  /** Writes one change to `spec.query.contextId` (see the file comment). */
  async write<T>(call: StoreCall, spec: WriteSpec<T>): Promise<T> {
    const id = spec.query.contextId;
    const before = this.tails.get(id);
    let done!: () => void;
    const mine = new Promise<void>((resolve) => (done = resolve));
    const tail = before === undefined ? mine : before.then(() => mine);
    this.tails.set(id, tail);
    try {
      // Given up, this write is still a link of the chain: its successors wait for `before`, not for it.
      if (before !== undefined) await this.turn(before, call.deadline);
      return await this.attempt(call, spec);
    } finally {
      done();
      if (this.tails.get(id) === tail) this.tails.delete(id);
    }
  }

  /** Waits for `before`, at most maxWaitMs and not past `deadline` (epoch ms). */
  private async turn(before: Promise<void>, deadline: number | undefined): Promise<void> {
    const untilDeadline = deadline === undefined ? Infinity : deadline - Date.now();
    const byDeadline = untilDeadline < this.maxWaitMs;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<"late">((resolve) => {
      timer = setTimeout(() => resolve("late"), Math.max(0, Math.min(this.maxWaitMs, untilDeadline)));
    });
    try {
      if ((await Promise.race([before, late])) !== "late") return;
    } finally {
      clearTimeout(timer);
    }
    if (byDeadline) throw new AppError("TIMEOUT", "the deadline passed while the call waited for earlier writes to the same context");
    throw new AppError(
      "SERVICE_UNAVAILABLE",
      `the context is busy: this call waited ${this.maxWaitMs} ms for earlier writes to it and was not run; retry`,
      { retryDelayMs: this.maxWaitMs, metadata: { queued_ms: String(this.maxWaitMs) } },
    );
  }

  private async attempt<T>(call: StoreCall, spec: WriteSpec<T>): Promise<T> {
    const base = await this.store.loadBase(call, spec.query);
    if (base === null && spec.request === undefined) throw AppError.contextNotFound(spec.query.contextId);
    if (base !== null) {
      let decision: Decision<T> | undefined;
      try {
        decision = spec.decide(base, this.clock.now());
      } catch (error) {
        // Read now, the refusal stands; on a cached base, or for a possible replay, the locked path decides.
        // (A decision to write nothing is confirmed the same way.)
        if (!base.cached && spec.request === undefined) throw error;
      }
      if (decision !== undefined && "unchanged" in decision) {
        if (!base.cached) return decision.unchanged;
      } else if (decision !== undefined) {
        const outcome = await this.store.apply(call, decision.change);
        if (outcome.applied) return decision.answer(outcome);
        if (outcome.reason === "request" && outcome.prior !== null) return this.replay(spec, outcome.prior);
      }
    }
    return this.locked(call, spec);
  }

  /** The locked path: lock and read the base, decide, apply and commit — two round trips. */
  private async locked<T>(call: StoreCall, spec: WriteSpec<T>): Promise<T> {
    const done = await this.store.transaction(call, async (tx): Promise<{ value: T } | { prior: StoredResult | null }> => {
      const { base, prior } = await tx.lockBase(spec.query, spec.request);
      if (prior !== null) return { prior };
      if (base === null) throw AppError.contextNotFound(spec.query.contextId);
      const decision = spec.decide(base, this.clock.now());
      if ("unchanged" in decision) return { value: decision.unchanged };
      const outcome = await tx.finish(decision.change);
      if (outcome.applied) return { value: decision.answer(outcome) };
      if (outcome.reason === "request") return { prior: outcome.prior };
      // Decided under the row lock: the revision cannot have moved.
      throw new Error(`a change to context ${spec.query.contextId} decided under its row lock did not apply`);
    });
    if ("value" in done) return done.value;
    // The key was taken by a call this one's statements could not see yet: it has committed by now.
    const prior = done.prior ?? (spec.request === undefined ? null : await this.store.storedResult(call, spec.request));
    if (prior === null) {
      throw new AppError("SERVICE_UNAVAILABLE", "another call with the same request_id was in progress; retry", { retryDelayMs: 100 });
    }
    return this.replay(spec, prior);
  }

  private replay<T>(spec: WriteSpec<T>, prior: StoredResult): T {
    if (spec.request === undefined || spec.replay === undefined) throw new Error("a replay needs a request key and a replay answer");
    return replayed(prior, spec.request, spec.replay);
  }
}
