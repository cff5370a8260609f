import { beforeEach, describe, expect, it } from "vitest";
import type { Context } from "../../../src/domain/context.js";
import type { JsonValue } from "../../../src/domain/json.js";
import { stateChecksum } from "../../../src/domain/state-checksum.js";
import { silentLogger } from "../../../src/logger.js";
import type { Caller } from "../../../src/service/caller.js";
import { ContextService } from "../../../src/service/context-service.js";
import { ParticipantService } from "../../../src/service/participant-service.js";
import { SharedStateService, type UpdateStateInput, type VersionedState } from "../../../src/service/shared-state-service.js";
import { Sweeper } from "../../../src/service/sweeper.js";
import { MemoryContextStore } from "../../support/memory-store.js";
import { caught as failure } from "../../support/app-error-assertions.js";

const owner: Caller = { principal: "owner" };
const as = (principal: string): Caller => ({ principal });
const SNAPSHOT_INTERVAL = 5;
const RETENTION = 10;


describe(SharedStateService.name, () => {
  let time: number;
  let store: MemoryContextStore;
  let contexts: ContextService;
  let participants: ParticipantService;
  let state: SharedStateService;
  let sweeper: Sweeper;
  let context: Context;

  const clock = { now: () => new Date(time) };
  const set = (path: string, value: JsonValue, extra: Partial<UpdateStateInput> = {}, caller = owner) =>
    state.update(caller, {
      contextId: context.contextId,
      changes: [{ operation: "SET", path, value }],
      updateMask: [],
      expectedRevision: 0,
      requestId: "",
      ...extra,
    });
  const head = async () => (await contexts.get(owner, context.contextId, undefined)).context;

  beforeEach(async () => {
    time = Date.parse("2026-01-01T00:00:00.000Z");
    store = new MemoryContextStore(() => time);
    contexts = new ContextService(store, clock, { sharedStateMaxBytes: 4096 });
    participants = new ParticipantService(store, clock, { ttlMs: 60_000, activityTimeoutMs: 60_000 });
    state = new SharedStateService(store, clock, { maxBytes: 4096, snapshotInterval: SNAPSHOT_INTERVAL });
    const presence = { ttlMs: 60_000, activityTimeoutMs: 60_000 };
    sweeper = new Sweeper(store, clock, presence, { intervalMs: 1000, batchSize: 100, retentionRevisions: RETENTION }, silentLogger());
    context = await contexts.create(owner, {
      context: { name: "room", type: "COLLABORATIVE", sharedState: { variables: { seed: 1 } } },
      requestId: "",
    });
  });

  describe("create (ContextService)", () => {
    it("stores the initial state as the snapshot at revision 1, with nothing compacted", async () => {
      expect(context).toMatchObject({ revision: 1, compactRevision: 0, stateSnapshotRevision: 1 });
      expect(store.snapshotRevisions(context.contextId)).toEqual([1]);
      const latest = await state.get(owner, { contextId: context.contextId, revision: 0 });
      expect(latest.sharedState.variables).toEqual({ seed: 1 });
      await expect(state.get(owner, { contextId: context.contextId, revision: 1 })).resolves.toEqual(latest);
    });

    it("holds the initial state to the configured SHARED_STATE_MAX_BYTES", async () => {
      const err = await failure(
        contexts.create(owner, { context: { name: "big", type: "COLLABORATIVE", sharedState: { variables: { s: "x".repeat(5000) } } }, requestId: "" }),
      );
      expect(err.violations.map((v) => v.field)).toEqual(["context.shared_state.variables"]);
    });
  });

  describe("update", () => {
    it("applies the changes and replaced parts at the next revision, with one STATE_CHANGED event", async () => {
      const result = await state.update(owner, {
        contextId: context.contextId,
        changes: [
          { operation: "SET", path: "plan.step", value: 1 },
          { operation: "DELETE", path: "seed" },
        ],
        replace: { goals: [{ id: "g", name: "ship", description: "", successCriteria: [] }] },
        updateMask: ["goals"],
        expectedRevision: 1,
        requestId: "",
      });
      expect(result.revision).toBe(2);
      expect(result.sharedState.variables).toEqual({ plan: { step: 1 } });
      expect(result.sharedState.goals.map((g) => g.id)).toEqual(["g"]);
      expect(result.checksum).toBe(stateChecksum(result.sharedState));
      const event = store.eventsOf(context.contextId).at(-1);
      expect(event).toMatchObject({ type: "STATE_CHANGED", revision: 2, actor: "owner", payload: { kind: "state", state: { checksum: result.checksum } } });
      expect((await head()).revision).toBe(2);
      await expect(state.get(owner, { contextId: context.contextId, revision: 0 })).resolves.toEqual(result);
    });

    it("names bad fields and writes nothing", async () => {
      const before = store.writes;
      const err = await failure(
        state.update(owner, { contextId: "nope", changes: [{ operation: undefined, path: "a..b" }], updateMask: [], expectedRevision: -1, requestId: "" }),
      );
      expect(err.reason).toBe("VALIDATION_ERROR");
      expect(err.violations.map((v) => v.field)).toEqual(["context_id", "expected_revision", "changes[0].operation", "changes[0].path"]);
      expect(store.writes).toBe(before);
    });

    it("refuses a stale expected_revision with SYNC_CONFLICT and current_revision", async () => {
      await set("a", 1);
      const err = await failure(set("a", 2, { expectedRevision: 1 }));
      expect(err.reason).toBe("SYNC_CONFLICT");
      expect(err.metadata["current_revision"]).toBe("2");
      expect((await state.get(owner, { contextId: context.contextId, revision: 0 })).sharedState.variables["a"]).toBe(1);
    });

    it("returns the first result for a retried request_id and applies nothing twice", async () => {
      const first = await set("n", 1, { requestId: "once" });
      const again = await set("n", 99, { requestId: "once" });
      expect(again).toEqual(first);
      expect((await head()).revision).toBe(2);
      await contexts.create(owner, { context: { name: "other", type: "COLLABORATIVE" }, requestId: "used-for-create" });
      expect((await failure(set("n", 1, { requestId: "used-for-create" }))).violations.map((v) => v.field)).toEqual(["request_id"]);
    });

    it("refuses a state above SHARED_STATE_MAX_BYTES, naming changes", async () => {
      const err = await failure(
        state.update(owner, {
          contextId: context.contextId,
          changes: [
            { operation: "SET", path: "a", value: "x".repeat(2500) },
            { operation: "SET", path: "b", value: "y".repeat(2500) },
          ],
          updateMask: [],
          expectedRevision: 0,
          requestId: "",
        }),
      );
      expect(err.reason).toBe("VALIDATION_ERROR");
      expect(err.violations.map((v) => v.field)).toEqual(["changes"]);
      expect((await head()).revision).toBe(1);
    });

    it("refuses TERMINATED and COMPLETED contexts", async () => {
      await contexts.transition(owner, { contextId: context.contextId, target: { kind: "status", status: "COMPLETED" }, expectedRevision: 0, reason: "" });
      const err = await failure(set("a", 1));
      expect(err.reason).toBe("INVALID_STATE_TRANSITION");
      expect(err.metadata["status"]).toBe("COMPLETED");
    });

    it("needs WRITE: a viewer may read but not change, a stranger may do neither", async () => {
      await participants.add(owner, { contextId: context.contextId, participant: { agentId: "viewer", roles: ["viewer"] }, requestId: "" });
      expect((await failure(set("a", 1, {}, as("viewer")))).reason).toBe("FORBIDDEN");
      await expect(state.get(as("viewer"), { contextId: context.contextId, revision: 0 })).resolves.toMatchObject({ revision: 2 });
      expect((await failure(state.get(as("stranger"), { contextId: context.contextId, revision: 0 }))).reason).toBe("FORBIDDEN");
      expect((await failure(set("a", 1, {}, as("stranger")))).reason).toBe("FORBIDDEN");
    });

    it("returns CONTEXT_NOT_FOUND for an unknown context", async () => {
      const err = await failure(state.update(owner, { contextId: "6f1c2b8e-52c4-4a8e-9a39-3a4f7b1f0c11", changes: [{ operation: "DELETE", path: "a" }], updateMask: [], expectedRevision: 0, requestId: "" }));
      expect(err.reason).toBe("CONTEXT_NOT_FOUND");
    });
  });

  describe("get at an older revision", () => {
    it("returns exactly the state each revision produced, across snapshots and other events", async () => {
      const produced = new Map<number, VersionedState>();
      for (let i = 0; i < 23; i++) {
        const r = await set(`k${i % 4}`, { i });
        produced.set(r.revision, r);
        // Revisions without a state change in between: the replay must skip them.
        if (i % 6 === 0) await participants.add(owner, { contextId: context.contextId, participant: { agentId: `agent-${i}` }, requestId: "" });
      }
      expect(store.snapshotRevisions(context.contextId).length).toBeGreaterThan(3);
      for (const [revision, expected] of produced) {
        await expect(state.get(owner, { contextId: context.contextId, revision })).resolves.toEqual(expected);
      }
      // A participant revision shows the state as the previous state change left it.
      const joinRevision = store.eventsOf(context.contextId).find((e) => e.type === "PARTICIPANT_JOINED")!.revision;
      expect((await state.get(owner, { contextId: context.contextId, revision: joinRevision })).checksum).toBe(produced.get(joinRevision - 1)!.checksum);
    });

    it("refuses a revision past the head, naming revision", async () => {
      const err = await failure(state.get(owner, { contextId: context.contextId, revision: 2 }));
      expect(err.reason).toBe("VALIDATION_ERROR");
      expect(err.violations.map((v) => v.field)).toEqual(["revision"]);
    });
  });

  describe("compaction (Sweeper)", () => {
    it("drops history past the retention; older revisions are REVISION_COMPACTED, newer ones still read right", async () => {
      const produced: VersionedState[] = [];
      // 38 changes: the compaction point (29) falls between snapshots (26, 31), so one is stored there.
      for (let i = 0; i < 38; i++) produced.push(await set(`k${i % 3}`, i));
      const counts = await sweeper.sweepOnce();
      expect(counts.compacted).toBe(1);
      const { revision, compactRevision } = await head();
      expect(compactRevision).toBe(revision - RETENTION);
      expect(store.eventsOf(context.contextId).every((e) => e.revision > compactRevision)).toBe(true);

      const err = await failure(state.get(owner, { contextId: context.contextId, revision: compactRevision }));
      expect(err.reason).toBe("REVISION_COMPACTED");
      expect(err.metadata["compact_revision"]).toBe(String(compactRevision));
      for (const expected of produced.filter((p) => p.revision > compactRevision)) {
        await expect(state.get(owner, { contextId: context.contextId, revision: expected.revision })).resolves.toEqual(expected);
      }
      // The next pass finds nothing to do until the slack is used up.
      expect((await sweeper.sweepOnce()).compacted).toBe(0);
    });

    it("compacts a context it heard revised though the slice scan does not reach it, and only one it heard", async () => {
      for (let i = 0; i < 38; i++) await set(`k${i % 3}`, i);
      // The backstop scan's slice holds other contexts (a big table): it finds nothing due here.
      store.sweep.contextsToCompact = async () => [];
      expect((await sweeper.sweepOnce()).compacted).toBe(0);
      sweeper.revised(context.contextId);
      expect((await sweeper.sweepOnce()).compacted).toBe(1);
      const { revision, compactRevision } = await head();
      expect(compactRevision).toBe(revision - RETENTION);
      // Heard once, looked up once: the next pass has nothing revised to look at.
      expect((await sweeper.sweepOnce()).compacted).toBe(0);
    });

    it("makes ListContextEvents refuse a start inside compacted history, and start after it for 0", async () => {
      for (let i = 0; i < 30; i++) await set("k", i);
      await sweeper.sweepOnce();
      const { compactRevision } = await head();
      const page = await contexts.listEvents(owner, { contextId: context.contextId, startRevision: 0, pageSize: 5, pageToken: "" });
      expect(page.events[0]?.revision).toBe(compactRevision + 1);
      const err = await failure(contexts.listEvents(owner, { contextId: context.contextId, startRevision: compactRevision, pageSize: 5, pageToken: "" }));
      expect(err.reason).toBe("REVISION_COMPACTED");
      expect(err.metadata["compact_revision"]).toBe(String(compactRevision));
    });

    it("refuses a page token that compaction overtook", async () => {
      for (let i = 0; i < 5; i++) await set("k", i);
      const page = await contexts.listEvents(owner, { contextId: context.contextId, startRevision: 0, pageSize: 2, pageToken: "" });
      for (let i = 0; i < 30; i++) await set("k", i);
      await sweeper.sweepOnce();
      const err = await failure(contexts.listEvents(owner, { contextId: context.contextId, startRevision: 0, pageSize: 2, pageToken: page.nextPageToken }));
      expect(err.reason).toBe("REVISION_COMPACTED");
    });

    it("purges the events of contexts deleted over an hour ago", async () => {
      await set("k", 1);
      await contexts.delete(owner, { contextId: context.contextId, expectedRevision: 0, force: true });
      expect((await sweeper.sweepOnce()).purged).toBe(0);
      time += 3_600_001;
      expect((await sweeper.sweepOnce()).purged).toBe(3);
      expect(store.eventsOf(context.contextId)).toEqual([]);
    });
  });
});
