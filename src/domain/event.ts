/**
 * Context events: one row per change, written in the transaction that makes the change and
 * stamped with the context's new revision. Watch streams and ListContextEvents read them.
 */
import type { Context } from "./context.js";
import type { Participant } from "./participant.js";
import type { StateChangeSet } from "./shared-state.js";

export const EVENT_NAMES = {
  CONTEXT_CREATED: "context.created",
  CONTEXT_UPDATED: "context.updated",
  CONTEXT_STATUS_CHANGED: "context.status.changed",
  CONTEXT_DELETED: "context.deleted",
  STATE_CHANGED: "context.state.changed",
  PARTICIPANT_JOINED: "context.participant.joined",
  PARTICIPANT_UPDATED: "context.participant.updated",
  PARTICIPANT_LEFT: "context.participant.left",
} as const;

export type ContextEventType = keyof typeof EVENT_NAMES;
export const EVENT_TYPES = Object.keys(EVENT_NAMES) as ContextEventType[];

/** What an event carries: the context or the participant after the change, or the state changes applied. */
export type EventPayload =
  | { readonly kind: "context"; readonly context: Context }
  | { readonly kind: "participant"; readonly participant: Participant }
  | { readonly kind: "state"; readonly state: StateChangeSet };

export interface ContextEvent {
  readonly contextId: string;
  readonly revision: number;
  /** Order of the event within its revision (0, 1, …). */
  readonly seq: number;
  readonly eventId: string;
  readonly type: ContextEventType;
  readonly actor: string;
  readonly occurredAt: Date;
  readonly reason: string;
  readonly payload: EventPayload;
}

/** Where ListContextEvents resumes: the first (revision, seq) not yet returned. */
export interface EventPosition {
  readonly revision: number;
  readonly seq: number;
}
