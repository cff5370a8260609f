/**
 * How a WatchContext stream starts: validate the request, check READ, refuse a compacted
 * start_revision, and take the snapshot. Everything here happens once per stream, before the
 * watcher joins its context's feed.
 */
import { AppError } from "../domain/app-error.js";
import type { Context } from "../domain/context.js";
import type { Participant } from "../domain/participant.js";
import { authorize } from "../domain/permissions.js";
import { LIMITS } from "../domain/limits.js";
import { Violations } from "../domain/validation.js";
import { memberOf } from "./access.js";
import { storeCall, type Caller } from "./caller.js";
import type { StoreCall } from "./ports.js";
import { ReadAccess } from "./watch-access.js";
import {
  DEFAULT_PROGRESS_INTERVAL_MS,
  MAX_PROGRESS_INTERVAL_MS,
  MIN_PROGRESS_INTERVAL_MS,
  SNAPSHOT_ATTEMPTS,
  type WatchMessage,
  type WatchRequest,
  type WatchStore,
} from "./watch-types.js";

/** A stream ready to join its feed. */
export interface WatchStart {
  /** The revision of the context the start saw (the snapshot's, when there is one). */
  readonly revision: number;
  /** The first revision to deliver. */
  readonly next: number;
  readonly snapshot: WatchMessage | undefined;
  readonly access: ReadAccess;
  readonly progressIntervalMs: number;
}

/** The request's fields checked; VALIDATION_ERROR names every bad one. */
function validate(request: WatchRequest): number {
  const v = new Violations();
  v.uuid("context_id", request.contextId);
  if (!Number.isSafeInteger(request.startRevision) || request.startRevision < 0) {
    v.add("start_revision", "must be a whole number >= 0");
  }
  const interval = request.progressIntervalMs;
  if (interval !== 0 && (!Number.isSafeInteger(interval) || interval < MIN_PROGRESS_INTERVAL_MS || interval > MAX_PROGRESS_INTERVAL_MS)) {
    v.add("progress_interval_ms", `must be 0 (the default, ${DEFAULT_PROGRESS_INTERVAL_MS}) or from ${MIN_PROGRESS_INTERVAL_MS} to ${MAX_PROGRESS_INTERVAL_MS}`);
  }
  v.throwIfAny();
  return interval === 0 ? DEFAULT_PROGRESS_INTERVAL_MS : interval;
}

/** The context and the caller's membership, READ checked. */
async function readable(
  store: WatchStore,
  call: StoreCall,
  principal: string,
  contextId: string,
  withState: boolean,
): Promise<{ context: Context; member: Participant | null }> {
  const context = await store.getContext(call, contextId, { withState });
  if (context === null) throw AppError.contextNotFound(contextId);
  const member = await memberOf({ findMember: (id, agent) => store.findMember(call, id, agent) }, context, principal);
  authorize(principal, context, member, "READ");
  return { context, member };
}

/**
 * The FULL context and its participants at one revision. They are two reads, so the context is
 * read again after the participants: the same revision both times means no change committed in
 * between (every change bumps it), so the pair is consistent. Writers moving it on → try again.
 */
async function snapshotOf(store: WatchStore, call: StoreCall, principal: string, contextId: string) {
  for (let attempt = 1; ; attempt++) {
    const { context, member } = await readable(store, call, principal, contextId, true);
    const { participants } = await store.listParticipants(call, { contextId, filter: {}, limit: LIMITS.fullViewParticipants });
    const after = await store.getContext(call, contextId, { withState: false });
    if (after === null) throw AppError.contextNotFound(contextId);
    if (after.revision === context.revision) return { context, member, participants };
    if (attempt >= SNAPSHOT_ATTEMPTS) {
      throw new AppError("SERVICE_UNAVAILABLE", `context ${contextId} changes too fast for a consistent snapshot; retry`, {
        metadata: { context_id: contextId },
      });
    }
  }
}

function compacted(contextId: string, startRevision: number, compactRevision: number): AppError {
  return new AppError(
    "REVISION_COMPACTED",
    `start_revision ${startRevision} of context ${contextId} was compacted: history starts after revision ${compactRevision}`,
    { metadata: { context_id: contextId, compact_revision: String(compactRevision) } },
  );
}

/**
 * Starts a stream: with a snapshot, events follow from its revision + 1; otherwise from
 * start_revision, or (0) from the revision after the current one. A start_revision at or below
 * the compacted history fails with REVISION_COMPACTED.
 */
export async function startWatch(store: WatchStore, caller: Caller, request: WatchRequest): Promise<WatchStart> {
  const progressIntervalMs = validate(request);
  const call = storeCall(caller);
  const { contextId } = request;
  if (request.sendSnapshot) {
    const { context, member, participants } = await snapshotOf(store, call, caller.principal, contextId);
    const revision = context.revision;
    return {
      revision,
      next: revision + 1,
      snapshot: { kind: "snapshot", context, participants, revision },
      access: new ReadAccess(caller.principal, context, member, revision),
      progressIntervalMs,
    };
  }
  const { context, member } = await readable(store, call, caller.principal, contextId, false);
  const compactRevision = context.compactRevision ?? 0;
  if (request.startRevision > 0 && request.startRevision <= compactRevision) {
    throw compacted(contextId, request.startRevision, compactRevision);
  }
  return {
    revision: context.revision,
    next: request.startRevision > 0 ? request.startRevision : context.revision + 1,
    snapshot: undefined,
    access: new ReadAccess(caller.principal, context, member, context.revision),
    progressIntervalMs,
  };
}
