/**
 * ContextService's use cases. Each mutation runs in one transaction that locks the context row,
 * checks permission and expected_revision, writes the change with revision + 1, and appends its
 * event stamped with that revision; validation that needs no database runs before it starts.
 */
import { randomUUID } from "node:crypto";
import { AppError } from "../domain/app-error.js";
import { contextFromJson } from "../domain/context-codec.js";
import { validateContextFilter, type ContextFilterInput } from "../domain/context-filter.js";
import {
  validateBatchCreate,
  validateCreate,
  validateUpdate,
  type ContextSpecInput,
  type CreateContextInput,
  type ValidCreate,
} from "../domain/context-validation.js";
import { CONTEXT_STATUSES, LIFECYCLE_STAGES, expiryOf, type Context } from "../domain/context.js";
import type { ContextEvent, EventPosition } from "../domain/event.js";
import type { JsonObject } from "../domain/json.js";
import { LIMITS } from "../domain/limits.js";
import { decodePageToken, effectivePageSize, encodePageToken, isTimeIdPosition, TOTAL_SIZE_CAP } from "../domain/page-token.js";
import type { Participant } from "../domain/participant.js";
import { authorize, type Permission } from "../domain/permissions.js";
import { deletableWithoutForce, transition, type TransitionTarget } from "../domain/state-machine.js";
import { foldStatistics, type ContextStatistics } from "../domain/statistics.js";
import { Violations } from "../domain/validation.js";
import { readableContext } from "./access.js";
import { replicaCall, storeCall, type Caller } from "./caller.js";
import { requestKeyOf } from "./idempotency.js";
import { pageOnce } from "./page-once.js";
import { changeOf, checkRevision, contextPayload, eventsOf, nextRevision } from "./changes.js";
import { revisionCompacted } from "./state-history.js";
import type { ApplyOutcome, Clock, ContextChange, ContextListResult, ContextStore, StoreCall, WriteBase } from "./ports.js";
import { memberIn } from "./write-base.js";
import { replayed, Writes, type Decision } from "./writes.js";

export type { Caller, ContextFilterInput, ContextStatistics };

/** TransitionContext's target as it arrives: the oneof case, enum values unchecked. */
export type TransitionInput =
  | { readonly kind: "status"; readonly status: string | undefined }
  | { readonly kind: "stage"; readonly lifecycleStage: string | undefined }
  | undefined;

export interface ContextPage {
  readonly contexts: readonly Context[];
  readonly nextPageToken: string;
  readonly totalSize: number;
}

export interface EventPage {
  readonly events: readonly ContextEvent[];
  readonly nextPageToken: string;
}

function isEventPosition(p: unknown): p is EventPosition {
  const o = p as EventPosition | null;
  return typeof o === "object" && o !== null && Number.isSafeInteger(o.revision) && Number.isSafeInteger(o.seq);
}

function checkNonNegative(v: Violations, field: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) v.add(field, "must be a non-negative integer");
}

export interface ContextServiceOptions {
  /** SHARED_STATE_MAX_BYTES: the initial shared state obeys the limit UpdateSharedState enforces. */
  readonly sharedStateMaxBytes: number;
}

const CREATE = "CreateContext";

export class ContextService {
  private readonly writes: Writes;

  constructor(
    private readonly store: ContextStore,
    private readonly clock: Clock,
    private readonly options: ContextServiceOptions = { sharedStateMaxBytes: LIMITS.sharedStateBytes },
    writes?: Writes,
  ) {
    this.writes = writes ?? new Writes(store, clock);
  }

  /** One statement: the context, its first state snapshot, its event and the request key together. */
  async create(caller: Caller, input: CreateContextInput): Promise<Context> {
    const [created] = await this.createAll(caller, [validateCreate(input, "", this.options.sharedStateMaxBytes)]);
    if (created === undefined) throw new Error("a create of one context returned none");
    return created;
  }

  /** All or nothing: one transaction, its statements sent together; any failure rolls every creation back. */
  async batchCreate(caller: Caller, inputs: readonly CreateContextInput[]): Promise<Context[]> {
    return this.createAll(caller, validateBatchCreate(inputs, this.options.sharedStateMaxBytes));
  }

  async get(caller: Caller, contextId: string, view: string | undefined): Promise<{ context: Context; participants: readonly Participant[] }> {
    const v = new Violations();
    v.uuid("context_id", contextId);
    const resolved = v.oneOf("view", view, ["BASIC", "FULL"] as const, "BASIC");
    v.throwIfAny();
    const call = storeCall(caller);
    const context = await readableContext(this.store, call, caller.principal, contextId, resolved === "FULL");
    if (resolved === "BASIC") return { context, participants: [] };
    const { participants } = await this.store.listParticipants(call, { contextId, filter: {}, limit: LIMITS.fullViewParticipants });
    return { context, participants };
  }

  async update(
    caller: Caller,
    input: { contextId: string; patch: ContextSpecInput; updateMask: readonly string[]; expectedRevision: number },
  ): Promise<Context> {
    this.checkTarget(input.contextId, input.expectedRevision);
    return this.mutate(caller, input.contextId, "WRITE", (base, member, now) => {
      const current = base.context;
      const { spec, touchesAccessControl } = validateUpdate(current, input.patch, input.updateMask);
      if (touchesAccessControl) authorize(caller.principal, current, member, "ADMIN");
      checkRevision(current, input.expectedRevision);
      if (current.status === "TERMINATED") {
        throw new AppError("INVALID_STATE_TRANSITION", `context ${current.contextId} is TERMINATED and can no longer change`);
      }
      const next: Context = {
        ...current,
        ...spec,
        accessControl: { ...spec.accessControl, owner: current.accessControl.owner },
      };
      return this.change(base, caller, nextRevision(next, now), "CONTEXT_UPDATED", "");
    });
  }

  async delete(caller: Caller, input: { contextId: string; expectedRevision: number; force: boolean }): Promise<void> {
    this.checkTarget(input.contextId, input.expectedRevision);
    await this.mutate(caller, input.contextId, "DELETE", (base, _member, now): Decision<null> => {
      const current = base.context;
      checkRevision(current, input.expectedRevision);
      if (!input.force && !deletableWithoutForce(current.status)) {
        throw new AppError(
          "INVALID_STATE_TRANSITION",
          `context ${current.contextId} is ${current.status}: pause, complete or terminate it first, or delete with force`,
          { metadata: { status: current.status } },
        );
      }
      const gone = nextRevision(current, now);
      const events = eventsOf(gone, "CONTEXT_DELETED", [contextPayload(gone)], caller.principal, input.force ? "forced" : "");
      return { change: changeOf(base, null, events), answer: () => null };
    });
  }

  async list(caller: Caller, input: { pageSize: number; pageToken: string; filter: ContextFilterInput }): Promise<ContextPage> {
    const filter = validateContextFilter(input.filter);
    const limit = effectivePageSize(input.pageSize);
    // The token is bound to the principal too: a page position means nothing to another reader.
    const query = { principal: caller.principal, filter };
    const position = decodePageToken(input.pageToken, query, isTimeIdPosition);
    const after = position && { createdAt: new Date(position.t), contextId: position.id };
    // total_size: counted (up to the cap) for the first page only, then carried in the token.
    const carried = position?.n;
    const result = await this.store.listContexts(replicaCall(caller), {
      principal: caller.principal,
      filter,
      ...(after ? { after } : {}),
      limit: limit + 1,
      count: carried === undefined ? { upTo: TOTAL_SIZE_CAP } : false,
    });
    // Only a first page's result is kept and handed out again (list-pages.ts); a later page's total is its token's.
    const make = ({ contexts, totalSize: counted }: ContextListResult): ContextPage => {
      const totalSize = carried ?? counted ?? 0;
      const page = contexts.length > limit ? contexts.slice(0, limit) : contexts;
      const last = page[page.length - 1];
      const nextPageToken =
        contexts.length > limit && last ? encodePageToken({ t: last.createdAt.toISOString(), id: last.contextId, n: totalSize }, query) : "";
      return { contexts: page, nextPageToken, totalSize };
    };
    return position === undefined ? pageOnce(result, limit, make) : make(result);
  }

  async transition(
    caller: Caller,
    input: { contextId: string; target: TransitionInput; expectedRevision: number; reason: string },
  ): Promise<Context> {
    const target = this.checkTransition(input);
    return this.mutate(caller, input.contextId, "WRITE", (base, _member, now) => {
      const current = base.context;
      checkRevision(current, input.expectedRevision);
      const position = transition(current, target);
      const terminatedAt = position.status === "TERMINATED" ? now : current.terminatedAt;
      return this.change(base, caller, nextRevision({ ...current, ...position, terminatedAt }, now), "CONTEXT_STATUS_CHANGED", input.reason);
    });
  }

  async statistics(caller: Caller): Promise<ContextStatistics> {
    const groups = await this.store.contextStatistics(replicaCall(caller), caller.principal);
    return foldStatistics(groups, this.clock.now());
  }

  async listEvents(
    caller: Caller,
    input: { contextId: string; startRevision: number; pageSize: number; pageToken: string },
  ): Promise<EventPage> {
    const v = new Violations();
    v.uuid("context_id", input.contextId);
    checkNonNegative(v, "start_revision", input.startRevision);
    v.throwIfAny();
    const limit = effectivePageSize(input.pageSize);
    const query = { contextId: input.contextId, startRevision: input.startRevision };
    const token = decodePageToken(input.pageToken, query, isEventPosition);
    const call = storeCall(caller);
    const context = await readableContext(this.store, call, caller.principal, input.contextId, false);
    // 0 and 1 mean "from the oldest retained"; any later start, or a page position, inside the
    // compacted history is refused rather than silently skipped.
    const position = token ?? { revision: input.startRevision <= 1 ? context.compactRevision + 1 : input.startRevision, seq: 0 };
    if (position.revision <= context.compactRevision) throw revisionCompacted(position.revision, context.compactRevision);
    const events = await this.store.listEvents(replicaCall(caller), input.contextId, position, limit + 1);
    if (events[0] !== undefined && events[0].revision > position.revision) {
      // Every revision has an event, so a later first one may mean a compaction ran meanwhile.
      const now = await this.store.getContext(call, input.contextId, { withState: false });
      if (now !== null && position.revision <= now.compactRevision) throw revisionCompacted(position.revision, now.compactRevision);
    }
    const next = events[limit];
    return {
      events: events.slice(0, limit),
      nextPageToken: next ? encodePageToken({ revision: next.revision, seq: next.seq }, query) : "",
    };
  }

  /** Creates the contexts: one statement for one, one transaction sent in one round trip for a batch. */
  private async createAll(caller: Caller, valid: readonly ValidCreate[]): Promise<Context[]> {
    const now = this.clock.now();
    const changes = valid.map((item) => this.creation(caller, item, now));
    const call = storeCall(caller);
    const [single] = changes;
    const outcomes = changes.length === 1 && single !== undefined ? [await this.store.apply(call, single)] : await this.store.applyAll(call, changes);
    return Promise.all(outcomes.map((outcome, i) => this.created(call, changes[i]!, outcome)));
  }

  /** A create's answer: the context as stored, or what the first call with its request key saved. */
  private async created(call: StoreCall, change: ContextChange, outcome: ApplyOutcome): Promise<Context> {
    if (outcome.applied && outcome.context !== null) return outcome.context;
    const key = change.request?.key;
    // A batch aborted by another item's key (taken by a concurrent call) reaches here too.
    const prior = key === undefined ? null : outcome.applied === false && outcome.reason === "request" && outcome.prior !== null ? outcome.prior : await this.store.storedResult(call, key);
    if (key === undefined || prior === null) {
      throw new AppError("SERVICE_UNAVAILABLE", "another call with the same request_id was in progress; retry", { retryDelayMs: 100 });
    }
    return replayed(prior, key, (result) => contextFromJson(result as JsonObject));
  }

  private creation(caller: Caller, valid: ValidCreate, now: Date): ContextChange {
    const { spec, sharedState } = valid;
    const context = {
      ...spec,
      contextId: randomUUID(),
      status: "ACTIVE",
      lifecycleStage: "PLANNING",
      accessControl: { ...spec.accessControl, owner: caller.principal },
      participantCount: 0,
      sessionCount: 0,
      revision: 1,
      createdAt: now,
      updatedAt: now,
      lastActivityAt: now,
      expiresAt: expiryOf(spec.configuration, now),
      terminatedAt: null,
      compactRevision: 0,
      // The first state snapshot, the base every replay starts from until compaction stores newer ones.
      stateSnapshotRevision: 1,
    } as const;
    const key = requestKeyOf(caller, valid.requestId, CREATE);
    return {
      contextId: context.contextId,
      baseRevision: 0,
      context,
      sharedState,
      snapshot: true,
      events: eventsOf(context, "CONTEXT_CREATED", [contextPayload(context)], caller.principal, ""),
      ...(key === undefined ? {} : { request: { key, result: context } }),
    };
  }

  /** A write to the context with `permission` checked first, on the base (with the caller's membership). */
  private mutate<T>(
    caller: Caller,
    contextId: string,
    permission: Permission,
    decide: (base: WriteBase, member: Participant | null, now: Date) => Decision<T>,
  ): Promise<T> {
    return this.writes.write(storeCall(caller), {
      query: { contextId, withState: false, agents: [caller.principal] },
      decide: (base, now) => {
        const member = memberIn(base, caller.principal) ?? null;
        authorize(caller.principal, base.context, member, permission);
        return decide(base, member, now);
      },
    });
  }

  private change(base: WriteBase, caller: Caller, next: Context, type: "CONTEXT_UPDATED" | "CONTEXT_STATUS_CHANGED", reason: string): Decision<Context> {
    const events = eventsOf(next, type, [contextPayload(next)], caller.principal, reason);
    return { change: changeOf(base, next, events), answer: (stored) => stored.context ?? next };
  }

  private checkTarget(contextId: string, expectedRevision: number): void {
    const v = new Violations();
    v.uuid("context_id", contextId);
    checkNonNegative(v, "expected_revision", expectedRevision);
    v.throwIfAny();
  }

  private checkTransition(input: { contextId: string; target: TransitionInput; expectedRevision: number; reason: string }): TransitionTarget {
    const v = new Violations();
    v.uuid("context_id", input.contextId);
    checkNonNegative(v, "expected_revision", input.expectedRevision);
    v.text("reason", input.reason, { max: LIMITS.reasonChars, multiline: true });
    let target: TransitionTarget = { kind: "status", status: "ACTIVE" };
    if (input.target === undefined) v.add("status", "one of status or lifecycle_stage is required");
    else if (input.target.kind === "status") target = { kind: "status", status: v.oneOf("status", input.target.status, CONTEXT_STATUSES) };
    else target = { kind: "stage", lifecycleStage: v.oneOf("lifecycle_stage", input.target.lifecycleStage, LIFECYCLE_STAGES) };
    v.throwIfAny();
    return target;
  }
}
