/**
 * Seeding the real store through its own write path (ContextStore.apply), for integration tests:
 * contexts created as a create change (baseRevision 0), participants joined as a revision of
 * their context, contexts deleted as a change. Each asserts that its change applied.
 */
import { expect } from "vitest";
import type { Context } from "../../src/domain/context.js";
import type { ContextEvent } from "../../src/domain/event.js";
import type { Participant } from "../../src/domain/participant.js";
import type { ApplyOutcome, ContextChange, ContextStore } from "../../src/service/ports.js";
import { withoutState, type NewContext } from "./context-fixtures.js";

/** The change creating `context` (with its shared state) and writing `events` with it. */
export function creation(context: NewContext, options: { events?: readonly ContextEvent[]; snapshot?: boolean } = {}): ContextChange {
  return {
    contextId: context.contextId,
    baseRevision: 0,
    context: withoutState(context),
    sharedState: context.sharedState,
    ...(options.snapshot === undefined ? {} : { snapshot: options.snapshot }),
    events: options.events ?? [],
  };
}

/** The change moving `current` (as stored) to `next`, with whatever else `rest` carries. */
export function revision(current: Context, next: Partial<Context>, rest: Partial<Omit<ContextChange, "contextId" | "baseRevision" | "context">> = {}): ContextChange {
  return {
    contextId: current.contextId,
    baseRevision: current.revision,
    context: { ...withoutStateOf(current), revision: current.revision + 1, ...next },
    events: [],
    ...rest,
  };
}

/** The change deleting `current` (as stored). */
export function deletion(current: Context, events: readonly ContextEvent[] = []): ContextChange {
  return { contextId: current.contextId, baseRevision: current.revision, context: null, events };
}

function withoutStateOf(context: Context): Context {
  const { sharedState: _dropped, ...rest } = context;
  return rest;
}

/** Asserts the outcome applied and narrows it. */
export function applied(outcome: ApplyOutcome): Extract<ApplyOutcome, { applied: true }> {
  expect(outcome).toMatchObject({ applied: true });
  if (!outcome.applied) throw new Error("the change did not apply");
  return outcome;
}

/** Creates each context (one statement each), without events. */
export async function seed(store: ContextStore, ...contexts: readonly NewContext[]): Promise<void> {
  for (const context of contexts) applied(await store.apply({}, creation(context)));
}

/** The stored context, which must exist. */
export async function current(store: ContextStore, contextId: string): Promise<Context> {
  const context = await store.getContext({}, contextId, { withState: false });
  if (context === null) throw new Error(`context ${contextId} does not exist`);
  return context;
}

/**
 * Inserts the participants, one revision per context they belong to (participant_count left as
 * the context has it: tests that need it set it on the fixture).
 */
export async function join(store: ContextStore, ...participants: readonly Participant[]): Promise<void> {
  const byContext = new Map<string, Participant[]>();
  for (const p of participants) byContext.set(p.contextId, [...(byContext.get(p.contextId) ?? []), p]);
  for (const [contextId, inserted] of byContext) {
    applied(await store.apply({}, revision(await current(store, contextId), {}, { inserted })));
  }
}

/** Deletes the context as a change (its participants and snapshots go by cascade). */
export async function remove(store: ContextStore, contextId: string, events: readonly ContextEvent[] = []): Promise<void> {
  applied(await store.apply({}, deletion(await current(store, contextId), events)));
}
