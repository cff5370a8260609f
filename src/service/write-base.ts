/**
 * Reading a WriteBase (ports.ts): who is a member, which participants exist, whether a base holds
 * all a write needs, and the base a successful change leaves behind (the cache keeps it, so this
 * instance's next write to the context is decided without reading it again).
 */
import type { Context } from "../domain/context.js";
import type { Participant } from "../domain/participant.js";
import type { ApplyOutcome, BaseQuery, ContextChange, WriteBase } from "./ports.js";

/** `agentId`'s membership: the participant, null when it has none, undefined when the base did not read it. */
export function memberIn(base: WriteBase, agentId: string): Participant | null | undefined {
  const found = base.members.get(agentId);
  if (found !== undefined) return found;
  return base.complete || base.agents.has(agentId) ? null : undefined;
}

/** The participant `participantId`: null when it does not exist, undefined when the base did not read it. */
export function participantIn(base: WriteBase, participantId: string): Participant | null | undefined {
  const found = base.participants.get(participantId);
  if (found !== undefined) return found;
  return base.complete || base.participantIds.has(participantId) ? null : undefined;
}

/** Whether `base` holds everything `query` asks for. */
export function covers(base: WriteBase, query: BaseQuery): boolean {
  if (query.withState && base.context.sharedState === undefined) return false;
  if (base.complete) return true;
  if (query.participantId !== undefined && participantIn(base, query.participantId) === undefined) return false;
  return query.agents.every((agent) => memberIn(base, agent) !== undefined);
}

function withoutState(context: Context): Context {
  const { sharedState: _dropped, ...rest } = context;
  return rest;
}

/**
 * The base after `change` was applied on `base`: the stored context, the participants as the
 * change left them (updated ones as stored), and what is now known not to exist. Null when the
 * context was deleted.
 *
 * It takes over `base`'s maps and changes them in place (copying them was most of a participant
 * write's own CPU on a context of a few hundred members): `base` is not used again. A change
 * applies only while the context is still at the revision of the base it was decided on, so at
 * most one applied change ever succeeds a base; and a base is only handed to writes — to one at a
 * time per context on an instance (writes.ts), or to the one transaction that read it.
 */
export function successor(base: WriteBase, change: ContextChange, outcome: Extract<ApplyOutcome, { applied: true }>): WriteBase | null {
  if (outcome.context === null) return null;
  const participants = base.participants as Map<string, Participant>;
  const members = base.members as Map<string, Participant>;
  const agents = base.agents as Set<string>;
  const participantIds = base.participantIds as Set<string>;
  for (const p of change.inserted ?? []) {
    participants.set(p.participantId, p);
    members.set(p.agentId, p);
  }
  for (const p of outcome.updated) {
    participants.set(p.participantId, p);
    members.set(p.agentId, p);
  }
  for (const id of change.deleted ?? []) {
    const gone = participants.get(id);
    participants.delete(id);
    participantIds.add(id);
    if (gone !== undefined) {
      members.delete(gone.agentId);
      agents.add(gone.agentId);
    }
  }
  const state = change.sharedState ?? base.context.sharedState;
  const context = withoutState(outcome.context);
  return {
    context: state === undefined ? context : { ...context, sharedState: state },
    participants,
    members,
    complete: base.complete,
    agents,
    participantIds,
    cached: true,
  };
}

/** The base of a context just created: no participants, so every lookup is answered. */
export function createdBase(context: Context): WriteBase {
  return { context, participants: new Map(), members: new Map(), complete: true, agents: new Set(), participantIds: new Set(), cached: true };
}

/** The base an applied change leaves: the created context's, or `successor` of the one it was decided on; null when there is none to keep. */
export function baseAfter(change: ContextChange, outcome: Extract<ApplyOutcome, { applied: true }>): WriteBase | null {
  if (outcome.context === null) return null;
  if (change.baseRevision === 0) {
    const context = withoutState(outcome.context);
    return createdBase(change.sharedState === undefined ? context : { ...context, sharedState: change.sharedState });
  }
  return change.base === undefined ? null : successor(change.base, change, outcome);
}
