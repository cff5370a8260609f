/**
 * Turns what a client sent about a participant into checked values, or a VALIDATION_ERROR naming
 * every bad field. Roles are left empty when none were given: the context's default_role applies,
 * which only the service (holding the context) knows.
 */
import type { JsonObject } from "./json.js";
import { LIMITS } from "./limits.js";
import { PARTICIPANT_STATUSES, PARTICIPANT_TYPES, type Participant, type ParticipantFilter, type ParticipantType } from "./participant.js";
import { Violations } from "./validation.js";

/** A participant's settable fields as they arrive: enums unchecked, undefined = not set. */
export interface ParticipantInput {
  readonly agentId?: string;
  readonly participantType?: string;
  readonly displayName?: string;
  readonly roles?: readonly string[];
  readonly capabilities?: readonly string[];
  readonly metadata?: JsonObject;
}

/** A checked new participant. */
export interface ParticipantDraft {
  readonly agentId: string;
  readonly participantType: ParticipantType;
  readonly displayName: string;
  readonly roles: readonly string[];
  readonly capabilities: readonly string[];
  readonly metadata: JsonObject;
}

export interface ValidAdd {
  readonly contextId: string;
  readonly drafts: readonly ParticipantDraft[];
  /** "" when the caller sent none. */
  readonly requestId: string;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

function collectFields(v: Violations, at: string, input: ParticipantInput): Omit<ParticipantDraft, "agentId" | "participantType"> {
  const displayName = input.displayName ?? "";
  v.text(`${at}.display_name`, displayName, { max: LIMITS.displayNameChars });
  const roles = [...(input.roles ?? [])];
  v.names(`${at}.roles`, roles, LIMITS.roles, LIMITS.roleChars);
  const capabilities = [...(input.capabilities ?? [])];
  v.names(`${at}.capabilities`, capabilities, LIMITS.capabilities, LIMITS.capabilityChars);
  const metadata = input.metadata ?? {};
  v.json(`${at}.metadata`, metadata, LIMITS.participantMetadataBytes, LIMITS.jsonDepth);
  return { displayName, roles, capabilities, metadata };
}

function collectDraft(v: Violations, at: string, input: ParticipantInput): ParticipantDraft {
  const agentId = input.agentId ?? "";
  v.text(`${at}.agent_id`, agentId, { min: 1, max: LIMITS.agentIdChars });
  const participantType = v.oneOf(`${at}.participant_type`, input.participantType, PARTICIPANT_TYPES, "AGENT");
  return { agentId, participantType, ...collectFields(v, at, input) };
}

function collectRequestId(v: Violations, requestId: string): void {
  if (requestId !== "") v.text("request_id", requestId, { min: 1, max: LIMITS.requestIdChars });
}

/** AddParticipant's request. */
export function validateAdd(input: { contextId: string; participant: ParticipantInput; requestId: string }): ValidAdd {
  const v = new Violations();
  v.uuid("context_id", input.contextId);
  const draft = collectDraft(v, "participant", input.participant);
  collectRequestId(v, input.requestId);
  v.throwIfAny();
  return { contextId: input.contextId, drafts: [draft], requestId: input.requestId };
}

/** BatchAddParticipants' request: 1..100 participants, no agent twice. */
export function validateBatchAdd(input: { contextId: string; participants: readonly ParticipantInput[]; requestId: string }): ValidAdd {
  const v = new Violations();
  v.uuid("context_id", input.contextId);
  collectRequestId(v, input.requestId);
  if (input.participants.length === 0) v.add("participants", "must hold at least one participant");
  if (input.participants.length > LIMITS.batchSize) {
    v.add("participants", `must hold at most ${LIMITS.batchSize} participants (got ${input.participants.length})`);
    v.throwIfAny();
  }
  const drafts = input.participants.map((p, i) => collectDraft(v, `participants[${i}]`, p));
  const seen = new Map<string, number>();
  drafts.forEach((d, i) => {
    const first = seen.get(d.agentId);
    if (first !== undefined) v.add(`participants[${i}].agent_id`, `repeats participants[${first}]`);
    else seen.set(d.agentId, i);
  });
  v.throwIfAny();
  return { contextId: input.contextId, drafts, requestId: input.requestId };
}

const UPDATABLE = {
  display_name: "displayName",
  roles: "roles",
  capabilities: "capabilities",
  metadata: "metadata",
} as const;

export interface ValidParticipantUpdate {
  /** The participant's settable fields after the update. */
  readonly fields: Omit<ParticipantDraft, "agentId" | "participantType">;
  /** The mask changes roles, which needs MANAGE_PARTICIPANTS even for oneself. */
  readonly touchesRoles: boolean;
}

/**
 * Applies UpdateParticipant's `patch` to `current` along `mask`; a masked field left unset goes
 * back to empty. Roles emptied fall back to the context's default role in the service.
 */
export function validateParticipantUpdate(current: Participant, patch: ParticipantInput, mask: readonly string[]): ValidParticipantUpdate {
  const v = new Violations();
  if (mask.length === 0) v.add("update_mask", "must name at least one field to change");
  const merged: Mutable<ParticipantInput> = {
    displayName: current.displayName,
    roles: current.roles,
    capabilities: current.capabilities,
    metadata: current.metadata,
  };
  let touchesRoles = false;
  for (const path of mask) {
    const key = UPDATABLE[path as keyof typeof UPDATABLE];
    if (key === undefined) {
      v.add("update_mask", `${path} cannot be changed: use display_name, roles, capabilities or metadata`);
      continue;
    }
    touchesRoles ||= key === "roles";
    (merged as Record<string, unknown>)[key] = patch[key];
  }
  const fields = collectFields(v, "participant", merged);
  v.throwIfAny();
  return { fields, touchesRoles };
}

/** ListParticipants' filter as it arrives: enums unchecked, undefined or "" = any. */
export interface ParticipantFilterInput {
  readonly status?: string;
  readonly role?: string;
  readonly capability?: string;
  readonly participantType?: string;
}

export function validateParticipantFilter(input: ParticipantFilterInput): ParticipantFilter {
  const v = new Violations();
  const filter: Mutable<ParticipantFilter> = {};
  if (input.status !== undefined) filter.status = v.oneOf("filter.status", input.status, PARTICIPANT_STATUSES);
  if (input.participantType !== undefined) {
    filter.participantType = v.oneOf("filter.participant_type", input.participantType, PARTICIPANT_TYPES);
  }
  if (input.role) {
    v.text("filter.role", input.role, { max: LIMITS.roleChars });
    filter.role = input.role;
  }
  if (input.capability) {
    v.text("filter.capability", input.capability, { max: LIMITS.capabilityChars });
    filter.capability = input.capability;
  }
  v.throwIfAny();
  return filter;
}
