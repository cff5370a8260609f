import { describe, expect, it } from "vitest";
import type { Caller } from "../../../src/service/caller.js";
import { ContextService } from "../../../src/service/context-service.js";
import { pageOnce } from "../../../src/service/page-once.js";
import { ParticipantService } from "../../../src/service/participant-service.js";
import type { ContextListResult, ParticipantListResult } from "../../../src/service/ports.js";
import { MemoryContextStore } from "../../support/memory-store.js";

const owner: Caller = { principal: "owner" };

describe("pageOnce", () => {
  it("makes a result's page once per page size", () => {
    const result = { items: [1, 2, 3] };
    let made = 0;
    const make = (r: typeof result, limit: number) => () => ({ items: r.items.slice(0, limit), made: ++made });
    const two = pageOnce(result, 2, make(result, 2));
    expect(pageOnce(result, 2, make(result, 2))).toBe(two);
    expect(made).toBe(1);
    // Another page size is another page.
    expect(pageOnce(result, 1, make(result, 1)).items).toEqual([1]);
    expect(pageOnce({ items: [1, 2, 3] }, 2, make(result, 2))).not.toBe(two);
  });

  it("gives a kept first page the same page object, and a new result a new one, in both list calls", async () => {
    let time = Date.parse("2026-01-01T00:00:00.000Z");
    const store = new MemoryContextStore(() => time);
    const clock = { now: () => new Date(time) };
    const contexts = new ContextService(store, clock);
    const participants = new ParticipantService(store, clock, { ttlMs: 60_000, activityTimeoutMs: 60_000 });
    const made = [];
    for (const name of ["a", "b", "c"]) made.push(await contexts.create(owner, { context: { name, type: "COLLABORATIVE" }, requestId: "" }));
    const contextId = made[0]!.contextId;
    for (const agentId of ["x", "y", "z"]) {
      time += 1;
      await participants.add(owner, { contextId, participant: { agentId }, requestId: "" });
    }

    // The store hands the same result out again, as the read cache and ListPages do with a kept one.
    const keptContexts: ContextListResult = await store.listContexts({}, { principal: "owner", filter: {}, limit: 3, count: { upTo: 1000 } });
    store.listContexts = async () => keptContexts;
    const list = () => contexts.list(owner, { pageSize: 2, pageToken: "", filter: {} });
    const first = await list();
    expect(first.contexts).toHaveLength(2);
    expect(first.nextPageToken).not.toBe("");
    expect(await list()).toBe(first);
    // A later page is its own.
    const second = await contexts.list(owner, { pageSize: 2, pageToken: first.nextPageToken, filter: {} });
    expect(second).not.toBe(first);
    expect(second.totalSize).toBe(first.totalSize);

    const keptMembers: ParticipantListResult = await store.listParticipants({}, { contextId, filter: {}, limit: 3 });
    let result = keptMembers;
    store.listParticipants = async () => result;
    const members = () => participants.list(owner, { contextId, pageSize: 5, pageToken: "", filter: {} });
    const page = await members();
    expect(page.participants.map((p) => p.agentId)).toEqual(["x", "y", "z"]);
    expect(await members()).toBe(page);
    // A revision since: the store's new result is a new page.
    result = { ...keptMembers, participants: keptMembers.participants.slice(1), totalSize: 2 };
    const after = await members();
    expect(after).not.toBe(page);
    expect(after.participants.map((p) => p.agentId)).toEqual(["y", "z"]);
  });
});
