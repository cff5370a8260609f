/** A watch's READ decided in memory from the events it is delivered: visibility, owner and membership. */
import { describe, expect, it } from "vitest";
import type { Context } from "../../../src/domain/context.js";
import type { ContextEvent, ContextEventType, EventPayload } from "../../../src/domain/event.js";
import { ReadAccess } from "../../../src/service/watch-access.js";
import type { RevisionBatch } from "../../../src/service/watch-types.js";
import { makeContext } from "../../support/context-fixtures.js";
import { makeParticipant } from "../../support/participant-fixtures.js";

const privateContext = makeContext({ owner: "alice", visibility: "PRIVATE" }) as Context;
const publicContext = makeContext({ owner: "alice", visibility: "PUBLIC" }) as Context;

function batch(revision: number, type: ContextEventType, payload: EventPayload): RevisionBatch {
  const event: ContextEvent = { contextId: privateContext.contextId, revision, seq: 0, eventId: `e${revision}`, type, actor: "alice", occurredAt: new Date(), reason: "", payload };
  return { revision, events: [event] };
}
const context = (revision: number, c: Context) => batch(revision, "CONTEXT_UPDATED", { kind: "context", context: c });
const joined = (revision: number, agentId: string, roles: string[]) => batch(revision, "PARTICIPANT_JOINED", { kind: "participant", participant: makeParticipant(privateContext.contextId, { agentId, roles }) });
const left = (revision: number, agentId: string) => batch(revision, "PARTICIPANT_LEFT", { kind: "participant", participant: makeParticipant(privateContext.contextId, { agentId }) });

describe("ReadAccess", () => {
  it("follows the context's visibility: an outsider reads a PUBLIC context and stops when it turns PRIVATE", () => {
    const access = new ReadAccess("mallory", publicContext, null, 1);
    expect(access.canRead).toBe(true);
    expect(access.apply(context(2, privateContext))).toBe(false);
    expect(access.apply(context(3, publicContext))).toBe(true);
  });

  it("follows the caller's membership of a PRIVATE context, and no one else's", () => {
    const access = new ReadAccess("bob", privateContext, null, 1);
    expect(access.canRead).toBe(false);
    expect(access.apply(joined(2, "carol", ["viewer"]))).toBe(false);
    expect(access.apply(joined(3, "bob", ["viewer"]))).toBe(true);
    expect(access.apply(left(4, "carol"))).toBe(true);
    expect(access.apply(left(5, "bob"))).toBe(false);
  });

  it("lets the owner read whatever the visibility, and ignores revisions already reflected at the start", () => {
    const owner = new ReadAccess("alice", privateContext, null, 1);
    expect(owner.apply(context(2, privateContext))).toBe(true);
    const member = new ReadAccess("bob", privateContext, makeParticipant(privateContext.contextId, { agentId: "bob", roles: ["viewer"] }), 5);
    // A removal older than the membership read at the start is not replayed.
    expect(member.apply(left(4, "bob"))).toBe(true);
    expect(member.apply(left(6, "bob"))).toBe(false);
  });
});
