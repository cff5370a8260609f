/**
 * How every use case describes a change: check expected_revision, move the context to its next
 * revision, and stamp that revision's events — decided on a base (writes.ts), written in one
 * statement. One place, so every kind of change is stamped the same way.
 */
import { randomUUID } from "node:crypto";
import { AppError } from "../domain/app-error.js";
import { expiryOf, type Context } from "../domain/context.js";
import type { ContextEvent, ContextEventType, EventPayload } from "../domain/event.js";
import type { Participant } from "../domain/participant.js";
import type { ContextChange, WriteBase } from "./ports.js";

/** The actor of changes nobody asked for: lease expiry, context expiry, cleanup. */
export const SYSTEM_ACTOR = "system";

/** expected_revision: 0 = don't check; anything else must equal the current revision. */
export function checkRevision(current: Context, expected: number): void {
  if (expected !== 0 && expected !== current.revision) throw AppError.syncConflict(expected, current.revision);
}

/** The context after a change a caller made at `now`: next revision, fresh activity and expiry. */
export function nextRevision(context: Context, now: Date): Context {
  return {
    ...context,
    revision: context.revision + 1,
    updatedAt: now,
    lastActivityAt: now,
    expiresAt: expiryOf(context.configuration, now),
  };
}

/** The context after a change the system made (expiry, sweeps): next revision, activity untouched. */
export function nextSystemRevision(context: Context, now: Date): Context {
  return { ...context, revision: context.revision + 1, updatedAt: now };
}

export function contextPayload(context: Context): EventPayload {
  return { kind: "context", context };
}

export function participantPayload(participant: Participant): EventPayload {
  return { kind: "participant", participant };
}

/** The events of one revision, in order (seq 0, 1, …), all stamped with `context.revision`. */
export function eventsOf(
  context: Context,
  type: ContextEventType,
  payloads: readonly EventPayload[],
  actor: string,
  reason: string,
): ContextEvent[] {
  return payloads.map((payload, seq) => ({
    contextId: context.contextId,
    revision: context.revision,
    seq,
    eventId: randomUUID(),
    type,
    actor,
    occurredAt: context.updatedAt,
    reason,
    payload,
  }));
}

/** The participant rows a change writes besides the context's. */
export interface RowChanges {
  readonly inserted?: readonly Participant[];
  readonly updated?: readonly Participant[];
  readonly deleted?: readonly string[];
}

/** The change moving `base`'s context to `next` (null: deleting it) with `events`, decided on `base`. */
export function changeOf(base: WriteBase, next: Context | null, events: readonly ContextEvent[], rows: RowChanges = {}): ContextChange {
  return { contextId: base.context.contextId, baseRevision: base.context.revision, base, context: next, events, ...rows };
}
