/**
 * ContextService's use cases. Each mutation runs in one transaction that locks the context row,
 * checks permission and expected_revision, writes the change with revision + 1, and appends its
 * event stamped with that revision; validation that needs no database runs before it starts.
 */
import { randomUUID } from "node:crypto";
import { AppError } from "../domain/app-error.js";
import { contextFromJson, contextToJson } from "../domain/context-codec.js";
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
import { memberOf, readableContext } from "./access.js";
import { replicaCall, storeCall, type Caller } from "./caller.js";
import { priorResult, requestKeyOf } from "./idempotency.js";
import { checkRevision, commit, contextPayload, eventsOf, nextRevision } from "./changes.js";
import { revisionCompacted } from "./state-history.js";
import type { Clock, ContextStore, ContextTx } from "./ports.js";

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

function withoutState(context: Context): Context {
  const { sharedState: _dropped, ...rest } = context;
  return rest;
}

export interface ContextServiceOptions {
  /** SHARED_STATE_MAX_BYTES: the initial shared state obeys the limit UpdateSharedState enforces. */
  readonly sharedStateMaxBytes: number;
}

export class ContextService {
  constructor(
    private readonly store: ContextStore,
    private readonly clock: Clock,
    private readonly options: ContextServiceOptions = { sharedStateMaxBytes: LIMITS.sharedStateBytes },
  ) {}

  async create(caller: Caller, input: CreateContextInput): Promise<Context> {
    const valid = validateCreate(input, "", this.options.sharedStateMaxBytes);
    return this.store.transaction(storeCall(caller), (tx) => this.createIn(tx, caller, valid, "CreateContext"));
  }

  /** All or nothing: one transaction; any failure rolls every creation back. */
  async batchCreate(caller: Caller, inputs: readonly CreateContextInput[]): Promise<Context[]> {
    const valid = validateBatchCreate(inputs, this.options.sharedStateMaxBytes);
    return this.store.transaction(storeCall(caller), async (tx) => {
      const created: Context[] = [];
      for (const item of valid) created.push(await this.createIn(tx, caller, item, "CreateContext"));
      return created;
    });
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
    return this.mutate(caller, input.contextId, "WRITE", async (tx, current, now, member) => {
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
      return this.change(tx, caller, nextRevision(next, now), "CONTEXT_UPDATED", "");
    });
  }

  async delete(caller: Caller, input: { contextId: string; expectedRevision: number; force: boolean }): Promise<void> {
    this.checkTarget(input.contextId, input.expectedRevision);
    await this.mutate(caller, input.contextId, "DELETE", async (tx, current, now) => {
      checkRevision(current, input.expectedRevision);
      if (!input.force && !deletableWithoutForce(current.status)) {
        throw new AppError(
          "INVALID_STATE_TRANSITION",
          `context ${current.contextId} is ${current.status}: pause, complete or terminate it first, or delete with force`,
          { metadata: { status: current.status } },
        );
      }
      await tx.deleteContext(current.contextId);
      const gone = nextRevision(current, now);
      await tx.appendEvents(eventsOf(gone, "CONTEXT_DELETED", [contextPayload(gone)], caller.principal, input.force ? "forced" : ""));
      return current;
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
    const { contexts, totalSize: counted } = await this.store.listContexts(replicaCall(caller), {
      principal: caller.principal,
      filter,
      ...(after ? { after } : {}),
      limit: limit + 1,
      count: carried === undefined ? { upTo: TOTAL_SIZE_CAP } : false,
    });
    const totalSize = carried ?? counted ?? 0;
    const page = contexts.slice(0, limit);
    const last = page[page.length - 1];
    const nextPageToken =
      contexts.length > limit && last ? encodePageToken({ t: last.createdAt.toISOString(), id: last.contextId, n: totalSize }, query) : "";
    return { contexts: page, nextPageToken, totalSize };
  }

  async transition(
    caller: Caller,
    input: { contextId: string; target: TransitionInput; expectedRevision: number; reason: string },
  ): Promise<Context> {
    const target = this.checkTransition(input);
    return this.mutate(caller, input.contextId, "WRITE", async (tx, current, now) => {
      checkRevision(current, input.expectedRevision);
      const position = transition(current, target);
      const terminatedAt = position.status === "TERMINATED" ? now : current.terminatedAt;
      return this.change(tx, caller, nextRevision({ ...current, ...position, terminatedAt }, now), "CONTEXT_STATUS_CHANGED", input.reason);
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

  private async createIn(tx: ContextTx, caller: Caller, valid: ValidCreate, method: string): Promise<Context> {
    const key = requestKeyOf(caller, valid.requestId, method);
    const prior = await priorResult(tx, key);
    if (prior) return contextFromJson(prior.result as JsonObject);
    const now = this.clock.now();
    const { spec, sharedState } = valid;
    const context = {
      ...spec,
      contextId: randomUUID(),
      status: "ACTIVE",
      lifecycleStage: "PLANNING",
      accessControl: { ...spec.accessControl, owner: caller.principal },
      sharedState,
      participantCount: 0,
      sessionCount: 0,
      revision: 1,
      createdAt: now,
      updatedAt: now,
      lastActivityAt: now,
      expiresAt: expiryOf(spec.configuration, now),
      terminatedAt: null,
      compactRevision: 0,
      stateSnapshotRevision: 1,
    } as const;
    await tx.insertContext(context);
    // The base every replay of this context's state starts from, until compaction stores newer ones.
    await tx.saveStateSnapshot(context.contextId, 1, sharedState);
    const created = withoutState(context);
    await tx.appendEvents(eventsOf(created, "CONTEXT_CREATED", [contextPayload(created)], caller.principal, ""));
    if (key) await tx.saveRequestResult(key, contextToJson(created));
    return created;
  }

  /** Locks the context, checks `permission` (with the caller's membership), and runs `change` in the same transaction. */
  private mutate<T>(
    caller: Caller,
    contextId: string,
    permission: Permission,
    change: (tx: ContextTx, current: Context, now: Date, member: Participant | null) => Promise<T>,
  ): Promise<T> {
    return this.store.transaction(storeCall(caller), async (tx) => {
      const current = await tx.lockContext(contextId);
      if (current === null) throw AppError.contextNotFound(contextId);
      const member = await memberOf(tx, current, caller.principal);
      authorize(caller.principal, current, member, permission);
      return change(tx, current, this.clock.now(), member);
    });
  }

  private change(tx: ContextTx, caller: Caller, next: Context, type: "CONTEXT_UPDATED" | "CONTEXT_STATUS_CHANGED", reason: string): Promise<Context> {
    return commit(tx, next, eventsOf(next, type, [contextPayload(next)], caller.principal, reason));
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
