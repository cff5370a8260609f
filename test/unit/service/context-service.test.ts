import { beforeEach, describe, expect, it } from "vitest";
import type { CreateContextInput } from "../../../src/domain/context-validation.js";
import { ContextService, type Caller } from "../../../src/service/context-service.js";
import { MemoryContextStore } from "../../support/memory-store.js";
import { caught as failure } from "../../support/app-error-assertions.js";

const alice: Caller = { principal: "alice" };
const bob: Caller = { principal: "bob" };


function input(name: string, extra: Partial<CreateContextInput["context"]> = {}, requestId = ""): CreateContextInput {
  return { context: { name, type: "COLLABORATIVE", ...extra }, requestId };
}

describe(ContextService.name, () => {
  let time: number;
  let store: MemoryContextStore;
  let service: ContextService;

  beforeEach(() => {
    time = Date.parse("2026-01-01T00:00:00.000Z");
    store = new MemoryContextStore(() => time);
    // Each call sees a later millisecond, as real calls do.
    service = new ContextService(store, { now: () => new Date((time += 1)) });
  });

  describe("create", () => {
    it("creates an ACTIVE, PLANNING context at revision 1 owned by the caller, with its event", async () => {
      const created = await service.create(alice, input("plan", { configuration: { timeoutMs: 1000 } }));
      expect(created).toMatchObject({ status: "ACTIVE", lifecycleStage: "PLANNING", revision: 1, participantCount: 0 });
      expect(created.accessControl.owner).toBe("alice");
      expect(created.expiresAt?.getTime()).toBe(created.lastActivityAt.getTime() + 1000);
      expect(store.eventsOf(created.contextId).map((e) => [e.type, e.revision, e.actor])).toEqual([["CONTEXT_CREATED", 1, "alice"]]);
    });

    it("returns the first result for a retried request_id and creates nothing twice", async () => {
      const first = await service.create(alice, input("plan", {}, "req-1"));
      const again = await service.create(alice, input("other name", {}, "req-1"));
      expect(again).toEqual(first);
      expect((await service.list(alice, { pageSize: 0, pageToken: "", filter: {} })).totalSize).toBe(1);
    });

    it("lets another principal use the same request_id", async () => {
      const a = await service.create(alice, input("plan", {}, "req-1"));
      const b = await service.create(bob, input("plan", {}, "req-1"));
      expect(b.contextId).not.toBe(a.contextId);
    });

    it("returns CONTEXT_EXISTS for the same owner and name, but not once the first is TERMINATED", async () => {
      const first = await service.create(alice, input("plan"));
      expect((await failure(service.create(alice, input("plan")))).reason).toBe("CONTEXT_EXISTS");
      await service.transition(alice, { contextId: first.contextId, target: { kind: "status", status: "TERMINATED" }, expectedRevision: 0, reason: "" });
      await expect(service.create(alice, input("plan"))).resolves.toMatchObject({ name: "plan" });
    });

    it("writes nothing on bad input", async () => {
      const err = await failure(service.create(alice, input("")));
      expect(err.reason).toBe("VALIDATION_ERROR");
      expect(store.writes).toBe(0);
    });
  });

  describe("batchCreate", () => {
    it("creates every context, in order", async () => {
      const made = await service.batchCreate(alice, [input("a"), input("b")]);
      expect(made.map((c) => c.name)).toEqual(["a", "b"]);
    });

    it("creates nothing when one item clashes with an existing context", async () => {
      await service.create(alice, input("b"));
      expect((await failure(service.batchCreate(alice, [input("a"), input("b")]))).reason).toBe("CONTEXT_EXISTS");
      expect((await service.list(alice, { pageSize: 0, pageToken: "", filter: {} })).totalSize).toBe(1);
    });
  });

  describe("get", () => {
    it("returns CONTEXT_NOT_FOUND for an unknown id and VALIDATION_ERROR for a malformed one", async () => {
      expect((await failure(service.get(alice, "6f1c2b8e-52c4-4a8e-9a39-3a4f7b1f0c11", undefined))).reason).toBe("CONTEXT_NOT_FOUND");
      expect((await failure(service.get(alice, "nope", undefined))).violations[0]?.field).toBe("context_id");
    });

    it("returns shared state only in the FULL view", async () => {
      const c = await service.create(alice, input("plan", { sharedState: { variables: { step: 1 } } }));
      expect((await service.get(alice, c.contextId, undefined)).context.sharedState).toBeUndefined();
      expect((await service.get(alice, c.contextId, "FULL")).context.sharedState?.variables).toEqual({ step: 1 });
    });

    it("hides a PRIVATE context from others but shows a PUBLIC one", async () => {
      const priv = await service.create(alice, input("private"));
      const pub = await service.create(alice, input("public", { accessControl: { visibility: "PUBLIC" } }));
      expect((await failure(service.get(bob, priv.contextId, undefined))).reason).toBe("FORBIDDEN");
      await expect(service.get(bob, pub.contextId, undefined)).resolves.toBeDefined();
    });
  });

  describe("update", () => {
    it("changes masked fields, bumps the revision and records CONTEXT_UPDATED", async () => {
      const c = await service.create(alice, input("plan"));
      const next = await service.update(alice, { contextId: c.contextId, patch: { description: "now" }, updateMask: ["description"], expectedRevision: 1 });
      expect(next).toMatchObject({ description: "now", revision: 2 });
      expect(next.updatedAt.getTime()).toBeGreaterThan(c.updatedAt.getTime());
      expect(store.eventsOf(c.contextId).map((e) => e.type)).toEqual(["CONTEXT_CREATED", "CONTEXT_UPDATED"]);
    });

    it("returns SYNC_CONFLICT with the current revision for a stale expected_revision", async () => {
      const c = await service.create(alice, input("plan"));
      await service.update(alice, { contextId: c.contextId, patch: { description: "x" }, updateMask: ["description"], expectedRevision: 0 });
      const err = await failure(service.update(alice, { contextId: c.contextId, patch: { description: "y" }, updateMask: ["description"], expectedRevision: 1 }));
      expect(err.reason).toBe("SYNC_CONFLICT");
      expect(err.metadata["current_revision"]).toBe("2");
    });

    it("refuses others than the owner", async () => {
      const c = await service.create(alice, input("plan", { accessControl: { visibility: "PUBLIC" } }));
      const err = await failure(service.update(bob, { contextId: c.contextId, patch: { description: "x" }, updateMask: ["description"], expectedRevision: 0 }));
      expect(err.reason).toBe("FORBIDDEN");
    });

    it("returns CONTEXT_EXISTS when renaming onto another live context's name", async () => {
      await service.create(alice, input("a"));
      const b = await service.create(alice, input("b"));
      const err = await failure(service.update(alice, { contextId: b.contextId, patch: { name: "a" }, updateMask: ["name"], expectedRevision: 0 }));
      expect(err.reason).toBe("CONTEXT_EXISTS");
    });
  });

  describe("transition", () => {
    it("walks the lifecycle to COMPLETED, which completes the context", async () => {
      const c = await service.create(alice, input("plan"));
      const stage = (lifecycleStage: string) =>
        service.transition(alice, { contextId: c.contextId, target: { kind: "stage", lifecycleStage }, expectedRevision: 0, reason: "" });
      await stage("EXECUTING");
      await stage("MONITORING");
      const done = await stage("COMPLETED");
      expect(done).toMatchObject({ status: "COMPLETED", lifecycleStage: "COMPLETED", revision: 4 });
      expect(store.eventsOf(c.contextId).at(-1)?.type).toBe("CONTEXT_STATUS_CHANGED");
    });

    it("refuses an illegal move with INVALID_STATE_TRANSITION and a missing target with VALIDATION_ERROR", async () => {
      const c = await service.create(alice, input("plan"));
      const bad = await failure(service.transition(alice, { contextId: c.contextId, target: { kind: "stage", lifecycleStage: "MONITORING" }, expectedRevision: 0, reason: "" }));
      expect(bad.reason).toBe("INVALID_STATE_TRANSITION");
      const none = await failure(service.transition(alice, { contextId: c.contextId, target: undefined, expectedRevision: 0, reason: "" }));
      expect(none.reason).toBe("VALIDATION_ERROR");
    });
  });

  describe("delete", () => {
    it("refuses an ACTIVE context without force", async () => {
      const c = await service.create(alice, input("plan"));
      expect((await failure(service.delete(alice, { contextId: c.contextId, expectedRevision: 0, force: false }))).reason).toBe("INVALID_STATE_TRANSITION");
    });

    it("deletes with force and records CONTEXT_DELETED at the next revision", async () => {
      const c = await service.create(alice, input("plan"));
      await service.delete(alice, { contextId: c.contextId, expectedRevision: 1, force: true });
      expect((await failure(service.get(alice, c.contextId, undefined))).reason).toBe("CONTEXT_NOT_FOUND");
      expect(store.eventsOf(c.contextId).map((e) => [e.type, e.revision])).toEqual([
        ["CONTEXT_CREATED", 1],
        ["CONTEXT_DELETED", 2],
      ]);
    });
  });

  describe("list", () => {
    it("pages newest first without skips or repeats while contexts are added", async () => {
      for (let i = 0; i < 5; i++) await service.create(alice, input(`c${i}`));
      const first = await service.list(alice, { pageSize: 2, pageToken: "", filter: {} });
      expect(first.contexts.map((c) => c.name)).toEqual(["c4", "c3"]);
      await service.create(alice, input("late"));
      const second = await service.list(alice, { pageSize: 2, pageToken: first.nextPageToken, filter: {} });
      const third = await service.list(alice, { pageSize: 2, pageToken: second.nextPageToken, filter: {} });
      expect([...second.contexts, ...third.contexts].map((c) => c.name)).toEqual(["c2", "c1", "c0"]);
      expect(third.nextPageToken).toBe("");
    });

    it("counts the filter in total_size and lists only what the caller may read", async () => {
      await service.create(alice, input("a1", { metadata: { tags: ["x"] } }));
      await service.create(alice, input("a2"));
      await service.create(alice, input("a3", { accessControl: { visibility: "PUBLIC" }, metadata: { tags: ["x"] } }));
      expect((await service.list(alice, { pageSize: 1, pageToken: "", filter: { tag: "x" } })).totalSize).toBe(2);
      expect((await service.list(bob, { pageSize: 0, pageToken: "", filter: {} })).contexts.map((c) => c.name)).toEqual(["a3"]);
    });

    it("refuses a page token from another filter", async () => {
      for (let i = 0; i < 3; i++) await service.create(alice, input(`c${i}`));
      const first = await service.list(alice, { pageSize: 1, pageToken: "", filter: {} });
      const err = await failure(service.list(alice, { pageSize: 1, pageToken: first.nextPageToken, filter: { namePrefix: "c" } }));
      expect(err.violations[0]?.field).toBe("page_token");
    });
  });

  describe("statistics", () => {
    it("counts the readable contexts by status, stage and type", async () => {
      const a = await service.create(alice, input("a"));
      await service.create(alice, input("b", { type: "PIPELINE" }));
      await service.transition(alice, { contextId: a.contextId, target: { kind: "status", status: "PAUSED" }, expectedRevision: 0, reason: "" });
      const stats = await service.statistics(alice);
      expect(stats.totalContexts).toBe(2);
      expect(stats.byStatus).toMatchObject({ ACTIVE: 1, PAUSED: 1, COMPLETED: 0 });
      expect(stats.byType).toMatchObject({ COLLABORATIVE: 1, PIPELINE: 1 });
      expect((await service.statistics(bob)).totalContexts).toBe(0);
    });
  });

  describe("listEvents", () => {
    it("pages the audit trail oldest first from start_revision", async () => {
      const c = await service.create(alice, input("plan"));
      for (const d of ["a", "b", "c"]) {
        await service.update(alice, { contextId: c.contextId, patch: { description: d }, updateMask: ["description"], expectedRevision: 0 });
      }
      const first = await service.listEvents(alice, { contextId: c.contextId, startRevision: 2, pageSize: 2, pageToken: "" });
      expect(first.events.map((e) => e.revision)).toEqual([2, 3]);
      const second = await service.listEvents(alice, { contextId: c.contextId, startRevision: 2, pageSize: 2, pageToken: first.nextPageToken });
      expect(second.events.map((e) => e.revision)).toEqual([4]);
      expect(second.nextPageToken).toBe("");
    });
  });
});
