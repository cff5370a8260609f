import { describe, expect, it } from "vitest";
import type { ApplyOutcome, ContextChange, WriteBase } from "../../../src/service/ports.js";
import { memberIn, participantIn, successor } from "../../../src/service/write-base.js";
import { makeContext, withoutState } from "../../support/context-fixtures.js";
import { makeParticipant } from "../../support/participant-fixtures.js";

describe("successor", () => {
  const context = { ...withoutState(makeContext({ name: "base" })), revision: 4 };
  const ann = makeParticipant(context.contextId, { agentId: "ann" });
  const bob = makeParticipant(context.contextId, { agentId: "bob" });
  const base = (): WriteBase => ({
    context,
    participants: new Map([
      [ann.participantId, ann],
      [bob.participantId, bob],
    ]),
    members: new Map([
      ["ann", ann],
      ["bob", bob],
    ]),
    complete: false,
    agents: new Set(["ann", "bob", "carl"]),
    participantIds: new Set(),
    cached: true,
  });
  type Applied = Extract<ApplyOutcome, { applied: true }>;
  const applied = (updated: Applied["updated"] = []): Applied => ({
    applied: true,
    context: { ...context, revision: 5 },
    updated,
  });

  it("leaves the participants as the change left them, and knows who is gone", () => {
    const carl = makeParticipant(context.contextId, { agentId: "carl" });
    const renamed = { ...ann, displayName: "Ann" };
    const change: ContextChange = {
      contextId: context.contextId,
      baseRevision: 4,
      base: base(),
      context: { ...context, revision: 5 },
      inserted: [carl],
      deleted: [bob.participantId],
      events: [],
    };
    const next = successor(change.base!, change, applied([renamed]))!;
    expect(next.context.revision).toBe(5);
    expect(memberIn(next, "carl")).toEqual(carl);
    expect(memberIn(next, "ann")).toEqual(renamed);
    // Bob left: known not to be a member (and his id known not to exist), not "unknown".
    expect(memberIn(next, "bob")).toBeNull();
    expect(participantIn(next, bob.participantId)).toBeNull();
    // Never asked about: still unknown (the base is not complete).
    expect(memberIn(next, "dora")).toBeUndefined();
  });

  it("keeps the shared state the change wrote, or the base's", () => {
    const state = { variables: { a: 1 }, resources: {}, dependencies: [], goals: [] };
    const change: ContextChange = { contextId: context.contextId, baseRevision: 4, base: base(), context: { ...context, revision: 5 }, sharedState: state, events: [] };
    expect(successor(change.base!, change, applied())!.context.sharedState).toBe(state);
  });

  it("is null when the change deleted the context", () => {
    const change: ContextChange = { contextId: context.contextId, baseRevision: 4, base: base(), context: null, events: [] };
    expect(successor(change.base!, change, { applied: true, context: null, updated: [] })).toBeNull();
  });
});
