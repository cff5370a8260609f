/** Domain objects for store tests: contexts with every field set, and events. */
import { randomUUID } from "node:crypto";
import type { Context } from "../../src/domain/context.js";
import type { ContextEvent } from "../../src/domain/event.js";
import type { SharedState, StateChangeSet } from "../../src/domain/shared-state.js";

/** A fixed instant with a non-zero millisecond part, so precision loss would show. */
export const BASE = Date.UTC(2025, 0, 15, 12, 0, 0, 123);

/** BASE moved by `offsetMs`. */
export function at(offsetMs: number): Date {
  return new Date(BASE + offsetMs);
}

/** A shared state using every part of the type. */
export const STATE: SharedState = {
  variables: { plan: { step: 2, notes: ["a", "b"] }, ok: true, nothing: null },
  resources: { gpu: { type: "compute", amount: 2.5, unit: "cards", status: "ALLOCATED" } },
  dependencies: [{ id: "d1", type: "PLAN", name: "plan", version: "1.0.0", status: null }],
  goals: [
    {
      id: "g1",
      name: "ship",
      description: "ship it",
      priority: "HIGH",
      status: "ACTIVE",
      successCriteria: [{ metric: "latency", operator: "<", value: 50, unit: "ms" }],
    },
  ],
};

export type NewContext = Context & { readonly sharedState: SharedState };

/** A valid context owned by alice (by default) with every field set to something non-default. */
export function makeContext(overrides: Partial<Omit<NewContext, "accessControl">> & { owner?: string; visibility?: "PUBLIC" | "PRIVATE"; tags?: string[] } = {}): NewContext {
  const { owner = "alice", visibility = "PRIVATE", tags = ["alpha", "beta"], ...rest } = overrides;
  const createdAt = rest.createdAt ?? at(0);
  return {
    contextId: randomUUID(),
    name: `ctx-${randomUUID().slice(0, 8)}`,
    description: "line one\nline two",
    type: "COLLABORATIVE",
    status: "ACTIVE",
    lifecycleStage: "PLANNING",
    configuration: {
      maxParticipants: 10,
      maxSessions: 5,
      timeoutMs: 3_600_000,
      persistenceLevel: "PERSISTENT",
      isolationLevel: "SHARED",
      autoCleanup: true,
      cleanupDelayMs: 300_000,
    },
    accessControl: {
      owner,
      visibility,
      joinPolicy: "OPEN",
      defaultRole: "contributor",
      requiredCapabilities: ["plan"],
      requiredRoles: [],
    },
    metadata: { tags, category: "research", priority: "HIGH", customData: { nested: { n: 1, list: [1, "x"] } } },
    sharedState: STATE,
    participantCount: 0,
    sessionCount: 0,
    revision: 1,
    createdAt,
    updatedAt: createdAt,
    lastActivityAt: createdAt,
    expiresAt: new Date(createdAt.getTime() + 3_600_000),
    terminatedAt: null,
    compactRevision: 0,
    stateSnapshotRevision: 0,
    ...rest,
  };
}

export function withoutState(context: NewContext): Context {
  const { sharedState: _omitted, ...rest } = context;
  return rest;
}

/** A context event at (revision, seq) carrying `context`. */
export function event(contextId: string, revision: number, seq: number, context: Context): ContextEvent {
  return {
    contextId,
    revision,
    seq,
    eventId: randomUUID(),
    type: revision === 1 ? "CONTEXT_CREATED" : "CONTEXT_UPDATED",
    actor: "alice",
    occurredAt: at(revision * 1000 + seq),
    reason: `r${revision}.${seq}`,
    payload: { kind: "context", context },
  };
}

/** A change set using every kind of change and replacement, with JSON values of every type. */
export const CHANGE_SET: StateChangeSet = {
  changes: [
    { operation: "SET", path: "plan.step", value: { n: 3, list: [1, "two", null, false], empty: {} } },
    { operation: "SET", path: "nothing", value: null },
    { operation: "DELETE", path: "ok" },
  ],
  replace: { resources: STATE.resources, goals: [] },
  checksum: "sha256:0f1e2d",
};

/** A STATE_CHANGED event at (revision, seq) carrying `state` (CHANGE_SET by default). */
export function stateEvent(contextId: string, revision: number, seq: number, state: StateChangeSet = CHANGE_SET): ContextEvent {
  return {
    contextId,
    revision,
    seq,
    eventId: randomUUID(),
    type: "STATE_CHANGED",
    actor: "alice",
    occurredAt: at(revision * 1000 + seq),
    reason: "",
    payload: { kind: "state", state },
  };
}
