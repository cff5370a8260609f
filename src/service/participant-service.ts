/**
 * ParticipantService's use cases. Membership changes lock the context row first: that lock orders
 * joins and leaves, so the capacity check and participant_count stay exact under any concurrency.
 * Each change is one revision with its events; a plain lease renewal is not a change.
 */
import { randomUUID } from "node:crypto";
import { AppError } from "../domain/app-error.js";
import { participantsDocument, participantsFromJson } from "../domain/context-codec.js";
import type { Context } from "../domain/context.js";
import type { JsonObject } from "../domain/json.js";
import { LIMITS } from "../domain/limits.js";
import { decodePageToken, effectivePageSize, encodePageToken, isTimeIdPosition } from "../domain/page-token.js";
import {
  validateAdd,
  validateBatchAdd,
  validateParticipantFilter,
  validateParticipantUpdate,
  type ParticipantDraft,
  type ParticipantFilterInput,
  type ParticipantInput,
  type ValidAdd,
} from "../domain/participant-validation.js";
import type { Participant, PresencePolicy } from "../domain/participant.js";
import { authorize, forbidden, permissionsOf } from "../domain/permissions.js";
import { Violations } from "../domain/validation.js";
import { readableContext } from "./access.js";
import { replicaCall, storeCall, type Caller } from "./caller.js";
import { requestKeyOf } from "./idempotency.js";
import { pageOnce } from "./page-once.js";
import { changeOf, checkRevision, eventsOf, nextRevision, participantPayload } from "./changes.js";
import type { Clock, ContextStore, ParticipantListResult, WriteBase } from "./ports.js";
import { memberIn, participantIn } from "./write-base.js";
import { Writes, type Decision } from "./writes.js";

export type { ParticipantFilterInput, ParticipantInput };

export interface ParticipantPage {
  readonly participants: readonly Participant[];
  readonly nextPageToken: string;
  readonly totalSize: number;
}

function participantNotFound(contextId: string, participantId: string): AppError {
  return new AppError("PARTICIPANT_NOT_FOUND", `participant ${participantId} not found in context ${contextId}`, {
    metadata: { context_id: contextId, participant_id: participantId },
  });
}

function checkIds(contextId: string, participantId: string, expectedRevision = 0): void {
  const v = new Violations();
  v.uuid("context_id", contextId);
  v.uuid("participant_id", participantId);
  if (!Number.isSafeInteger(expectedRevision) || expectedRevision < 0) v.add("expected_revision", "must be a non-negative integer");
  v.throwIfAny();
}

/** The roles a participant holds: those given, or the context's default role when none were. */
function effectiveRoles(context: Context, roles: readonly string[]): readonly string[] {
  return roles.length > 0 ? roles : [context.accessControl.defaultRole];
}

/** FAILED_PRECONDITION when the context requires capabilities or roles the participant lacks. */
function checkRequirements(context: Context, roles: readonly string[], capabilities: readonly string[], agentId: string): void {
  const missingCapabilities = context.accessControl.requiredCapabilities.filter((c) => !capabilities.includes(c));
  if (missingCapabilities.length > 0) {
    throw new AppError("MISSING_CAPABILITY", `agent ${agentId} lacks the required capabilities ${missingCapabilities.join(", ")}`, {
      metadata: { agent_id: agentId, missing: missingCapabilities.join(",") },
    });
  }
  const missingRoles = context.accessControl.requiredRoles.filter((r) => !roles.includes(r));
  if (missingRoles.length > 0) {
    throw new AppError("MISSING_ROLE", `agent ${agentId} lacks the required roles ${missingRoles.join(", ")}`, {
      metadata: { agent_id: agentId, missing: missingRoles.join(",") },
    });
  }
}

/** Heartbeats that find their participant renewed or lapsed by someone else meanwhile try again this often. */
const RENEW_ATTEMPTS = 3;

export class ParticipantService {
  private readonly writes: Writes;

  constructor(
    private readonly store: ContextStore,
    private readonly clock: Clock,
    private readonly presence: PresencePolicy,
    writes?: Writes,
  ) {
    this.writes = writes ?? new Writes(store, clock);
  }

  async add(caller: Caller, input: { contextId: string; participant: ParticipantInput; requestId: string }): Promise<Participant> {
    const [added] = await this.join(caller, validateAdd(input), "AddParticipant");
    if (!added) throw new Error("a join of one participant returned none");
    return added;
  }

  /** All or nothing: capacity is checked for the whole batch, and the batch is one revision. */
  batchAdd(caller: Caller, input: { contextId: string; participants: readonly ParticipantInput[]; requestId: string }): Promise<Participant[]> {
    return this.join(caller, validateBatchAdd(input), "BatchAddParticipants");
  }

  async get(caller: Caller, contextId: string, participantId: string): Promise<Participant> {
    checkIds(contextId, participantId);
    const call = storeCall(caller);
    await readableContext(this.store, call, caller.principal, contextId, false);
    const participant = await this.store.getParticipant(call, contextId, participantId);
    if (participant === null) throw participantNotFound(contextId, participantId);
    return participant;
  }

  async update(
    caller: Caller,
    input: { contextId: string; participantId: string; patch: ParticipantInput; updateMask: readonly string[]; expectedRevision: number },
  ): Promise<Participant> {
    checkIds(input.contextId, input.participantId, input.expectedRevision);
    return this.withParticipant(caller, input.contextId, input.participantId, (base, current, member, now) => {
      const context = base.context;
      const { fields, touchesRoles } = validateParticipantUpdate(current, input.patch, input.updateMask);
      // Anyone may change its own name, capabilities and metadata; roles are the managers' call.
      if (current.agentId !== caller.principal || touchesRoles) authorize(caller.principal, context, member, "MANAGE_PARTICIPANTS");
      checkRevision(context, input.expectedRevision);
      const roles = effectiveRoles(context, fields.roles);
      checkRequirements(context, roles, fields.capabilities, current.agentId);
      const next: Participant = { ...current, ...fields, roles, lastActivityAt: now };
      const revised = nextRevision(context, now);
      const events = eventsOf(revised, "PARTICIPANT_UPDATED", [participantPayload(next)], caller.principal, "");
      return { change: changeOf(base, revised, events, { updated: [next] }), answer: (stored) => stored.updated[0] ?? next };
    });
  }

  async remove(caller: Caller, input: { contextId: string; participantId: string; reason: string }): Promise<void> {
    checkIds(input.contextId, input.participantId);
    const v = new Violations();
    v.text("reason", input.reason, { max: LIMITS.reasonChars, multiline: true });
    v.throwIfAny();
    await this.withParticipant(caller, input.contextId, input.participantId, (base, current, member, now): Decision<null> => {
      const context = base.context;
      if (current.agentId !== caller.principal) authorize(caller.principal, context, member, "MANAGE_PARTICIPANTS");
      const revised = nextRevision({ ...context, participantCount: context.participantCount - 1 }, now);
      const events = eventsOf(revised, "PARTICIPANT_LEFT", [participantPayload(current)], caller.principal, input.reason);
      return { change: changeOf(base, revised, events, { deleted: [current.participantId] }), answer: () => null };
    });
  }

  async list(
    caller: Caller,
    input: { contextId: string; pageSize: number; pageToken: string; filter: ParticipantFilterInput },
  ): Promise<ParticipantPage> {
    const v = new Violations();
    v.uuid("context_id", input.contextId);
    v.throwIfAny();
    const filter = validateParticipantFilter(input.filter);
    const limit = effectivePageSize(input.pageSize);
    const query = { contextId: input.contextId, filter };
    const position = decodePageToken(input.pageToken, query, isTimeIdPosition);
    const call = storeCall(caller);
    await readableContext(this.store, call, caller.principal, input.contextId, false);
    // A later page may come from a replica; the first one is the cache's, which loads from the primary.
    const result = await this.store.listParticipants(position ? replicaCall(caller) : call, {
      contextId: input.contextId,
      filter,
      ...(position ? { after: { joinedAt: new Date(position.t), participantId: position.id } } : {}),
      limit: limit + 1,
    });
    const make = ({ participants, totalSize }: ParticipantListResult): ParticipantPage => {
      const page = participants.length > limit ? participants.slice(0, limit) : participants;
      const last = page[page.length - 1];
      const nextPageToken =
        participants.length > limit && last ? encodePageToken({ t: last.joinedAt.toISOString(), id: last.participantId }, query) : "";
      return { participants: page, nextPageToken, totalSize };
    };
    // Only a first page's result is kept and handed out again (cached-store.ts).
    return position === undefined ? pageOnce(result, limit, make) : make(result);
  }

  /**
   * Renews a presence lease. The common case — an ACTIVE participant renewing itself — is one
   * UPDATE without the context; a participant coming back from INACTIVE is a revision, and a
   * manager renewing someone else's lease is checked against the context first.
   */
  async heartbeat(caller: Caller, input: { contextId: string; participantId: string }): Promise<Participant> {
    checkIds(input.contextId, input.participantId);
    const call = storeCall(caller);
    for (let attempt = 1; ; attempt++) {
      const now = this.clock.now();
      const leaseExpiresAt = new Date(now.getTime() + this.presence.ttlMs);
      const renewal = { ...input, now, leaseExpiresAt };
      const renewed = await this.store.renewLease(call, { ...renewal, agentId: caller.principal });
      if (renewed !== null) return renewed;
      const outcome = await this.withParticipant(caller, input.contextId, input.participantId, (base, current, member): Decision<Participant | null> => {
        if (current.agentId !== caller.principal) authorize(caller.principal, base.context, member, "MANAGE_PARTICIPANTS");
        // ACTIVE: renewing a current lease is not a revision (renewed below, as anyone's).
        if (current.status === "ACTIVE") return { unchanged: null };
        // Coming back is a presence change: a revision, like going away was.
        const next: Participant = { ...current, status: "ACTIVE", inactiveSince: null, lastActivityAt: now, leaseExpiresAt };
        const revised = nextRevision(base.context, now);
        const events = eventsOf(revised, "PARTICIPANT_UPDATED", [participantPayload(next)], caller.principal, "present");
        return { change: changeOf(base, revised, events, { updated: [next] }), answer: (stored) => stored.updated[0] ?? next };
      });
      if (outcome !== null) return outcome;
      const managed = await this.store.renewLease(call, renewal);
      if (managed !== null) return managed;
      // It lapsed between the check and the renewal: check again.
      if (attempt >= RENEW_ATTEMPTS) {
        throw new AppError("SERVICE_UNAVAILABLE", `participant ${input.participantId} changed while its lease was renewed; retry`, { retryDelayMs: 100 });
      }
    }
  }

  private join(caller: Caller, valid: ValidAdd, method: string): Promise<Participant[]> {
    const key = requestKeyOf(caller, valid.requestId, method);
    return this.writes.write(storeCall(caller), {
      query: { contextId: valid.contextId, withState: false, agents: [caller.principal, ...valid.drafts.map((d) => d.agentId)] },
      ...(key === undefined ? {} : { request: key }),
      replay: (result) => participantsFromJson(result as JsonObject),
      decide: (base, now) => {
        const context = base.context;
        this.authorizeJoin(caller, context, memberIn(base, caller.principal) ?? null, valid.drafts);
        if (context.status !== "ACTIVE") {
          throw new AppError("INVALID_STATE_TRANSITION", `context ${context.contextId} is ${context.status}: participants join ACTIVE contexts only`, {
            metadata: { status: context.status },
          });
        }
        for (const draft of valid.drafts) {
          checkRequirements(context, effectiveRoles(context, draft.roles), draft.capabilities, draft.agentId);
          if (memberIn(base, draft.agentId)) {
            throw new AppError("PARTICIPANT_ALREADY_EXISTS", `agent ${draft.agentId} is already a participant of context ${context.contextId}`, {
              metadata: { agent_id: draft.agentId, context_id: context.contextId },
            });
          }
        }
        const free = context.configuration.maxParticipants - context.participantCount;
        if (valid.drafts.length > free) {
          throw new AppError("CONTEXT_FULL", `context ${context.contextId} has ${Math.max(free, 0)} free places, ${valid.drafts.length} asked`, {
            metadata: { max_participants: String(context.configuration.maxParticipants), participant_count: String(context.participantCount) },
          });
        }
        const joined = valid.drafts.map((draft) => this.newParticipant(context, draft, now));
        const revised = nextRevision({ ...context, participantCount: context.participantCount + joined.length }, now);
        const events = eventsOf(revised, "PARTICIPANT_JOINED", joined.map(participantPayload), caller.principal, "");
        const change = changeOf(base, revised, events, { inserted: joined });
        return { change: key === undefined ? change : { ...change, request: { key, result: participantsDocument(joined) } }, answer: () => joined };
      },
    });
  }

  /**
   * Adding others needs MANAGE_PARTICIPANTS. With join_policy OPEN a caller may add itself, but
   * only with the default role: choosing its own roles would let anyone make itself admin.
   */
  private authorizeJoin(caller: Caller, context: Context, member: Participant | null, drafts: readonly ParticipantDraft[]): void {
    if (permissionsOf(caller.principal, context, member).has("MANAGE_PARTICIPANTS")) return;
    const { defaultRole, joinPolicy } = context.accessControl;
    const selfJoin =
      joinPolicy === "OPEN" &&
      drafts.every((d) => d.agentId === caller.principal && (d.roles.length === 0 || (d.roles.length === 1 && d.roles[0] === defaultRole)));
    if (!selfJoin) {
      const why = joinPolicy === "OPEN" ? " (an OPEN context lets a principal add only itself, with the default role)" : "";
      throw forbidden(caller.principal, context.contextId, "MANAGE_PARTICIPANTS", why);
    }
  }

  private newParticipant(context: Context, draft: ParticipantDraft, now: Date): Participant {
    return {
      participantId: randomUUID(),
      contextId: context.contextId,
      agentId: draft.agentId,
      participantType: draft.participantType,
      displayName: draft.displayName,
      status: "ACTIVE",
      roles: effectiveRoles(context, draft.roles),
      capabilities: draft.capabilities,
      metadata: draft.metadata,
      joinedAt: now,
      lastActivityAt: now,
      leaseExpiresAt: new Date(now.getTime() + this.presence.ttlMs),
      inactiveSince: null,
    };
  }

  /** A write about one participant, decided on a base holding it and the caller's membership. */
  private withParticipant<T>(
    caller: Caller,
    contextId: string,
    participantId: string,
    decide: (base: WriteBase, participant: Participant, member: Participant | null, now: Date) => Decision<T>,
  ): Promise<T> {
    return this.writes.write(storeCall(caller), {
      query: { contextId, withState: false, agents: [caller.principal], participantId },
      decide: (base, now) => {
        const member = memberIn(base, caller.principal) ?? null;
        const participant = participantIn(base, participantId) ?? null;
        if (participant === null) {
          // Someone who may not read the context must not learn which participants it has.
          authorize(caller.principal, base.context, member, "READ");
          throw participantNotFound(contextId, participantId);
        }
        return decide(base, participant, member, now);
      },
    });
  }
}
