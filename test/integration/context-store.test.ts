import { randomUUID } from "node:crypto";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { AppError } from "../../src/domain/app-error.js";
import type { Context } from "../../src/domain/context.js";
import type { Clock } from "../../src/service/ports.js";
import { PgContextStore } from "../../src/store/context-store.js";
import { contexts } from "../../src/store/schema.js";
import { caught, expectClientSafe, sqlStateOf } from "../support/app-error-assertions.js";
import { at, BASE, event, makeContext, STATE, withoutState, type NewContext } from "../support/context-fixtures.js";
import { describeOnStores } from "../support/databases.js";

await describeOnStores(PgContextStore.name, (under) => {
  const store = (clock?: Clock) => new PgContextStore(under.database(), clock ? { clock } : {});
  const insert = (...all: NewContext[]) =>
    store().transaction({}, async (tx) => {
      for (const c of all) await tx.insertContext(c);
    });

  describe("insert, lock, update, delete", () => {
    it("round-trips every field, dates exact to the millisecond", async () => {
      const created = makeContext({ expiresAt: at(3_600_000) });
      await insert(created);

      expect(await store().getContext({}, created.contextId, { withState: true })).toEqual(created);
      const basic = await store().getContext({}, created.contextId, { withState: false });
      expect(basic).toEqual(withoutState(created));
      expect(basic).not.toHaveProperty("sharedState");
      expect(basic?.createdAt.getTime()).toBe(BASE);

      const locked = await store().transaction({}, (tx) => tx.lockContext(created.contextId));
      expect(locked).toEqual(withoutState(created));
    });

    it("updates every column but shared state and created_at", async () => {
      const created = makeContext();
      await insert(created);
      const changed: Context = {
        ...withoutState(created),
        name: "renamed",
        description: "",
        type: "PIPELINE",
        status: "PAUSED",
        lifecycleStage: "EXECUTING",
        configuration: { ...created.configuration, maxParticipants: 99, timeoutMs: 0, autoCleanup: false },
        accessControl: { ...created.accessControl, visibility: "PUBLIC", joinPolicy: "INVITATION_ONLY", requiredRoles: ["admin"] },
        metadata: { tags: ["gamma"], category: "", priority: "LOW", customData: {} },
        participantCount: 3,
        sessionCount: 1,
        revision: 7,
        createdAt: at(999_999), // ignored: created_at never changes
        updatedAt: at(5_001),
        lastActivityAt: at(5_002),
        expiresAt: null,
        compactRevision: 4,
        stateSnapshotRevision: 6,
      };
      await store().transaction({}, async (tx) => {
        expect(await tx.lockContext(created.contextId)).not.toBeNull();
        await tx.updateContext(changed);
      });
      const read = await store().getContext({}, created.contextId, { withState: true });
      expect(read).toEqual({ ...changed, createdAt: created.createdAt, sharedState: STATE });
      // The tag filter reads the tags column: it follows metadata.tags.
      const tagged = await store().listContexts({}, { principal: "alice", filter: { tag: "gamma" }, limit: 10 });
      expect(tagged.contexts.map((c) => c.contextId)).toEqual([created.contextId]);
    });

    it("writes terminated_at as the service sets it, with no store-side logic", async () => {
      const created = makeContext();
      await insert(created);
      const terminatedAtOf = async () => {
        const [row] = await under
          .database()
          .db.select({ terminatedAt: contexts.terminatedAt })
          .from(contexts)
          .where(eq(contexts.contextId, created.contextId));
        return row?.terminatedAt;
      };
      const terminated: Context = { ...withoutState(created), status: "TERMINATED", revision: 2, updatedAt: at(10_000), terminatedAt: at(9_999) };
      await store().transaction({}, (tx) => tx.updateContext(terminated));
      expect(await terminatedAtOf()).toEqual(at(9_999));
      expect((await store().getContext({}, created.contextId, { withState: false }))?.terminatedAt).toEqual(at(9_999));
      // Verbatim, even a later time or null: the service owns the field.
      await store().transaction({}, (tx) => tx.updateContext({ ...terminated, revision: 3, terminatedAt: at(20_000) }));
      expect(await terminatedAtOf()).toEqual(at(20_000));
      await store().transaction({}, (tx) => tx.updateContext({ ...terminated, revision: 4, terminatedAt: null }));
      expect(await terminatedAtOf()).toBeNull();
      // Inserted as given too.
      const born = makeContext({ status: "TERMINATED", terminatedAt: at(5) });
      await insert(born);
      expect((await store().getContext({}, born.contextId, { withState: true }))?.terminatedAt).toEqual(at(5));
    });

    it("returns null for a context that does not exist, and deletes", async () => {
      const created = makeContext();
      await insert(created);
      await store().transaction({}, (tx) => tx.deleteContext(created.contextId));
      expect(await store().getContext({}, created.contextId, { withState: false })).toBeNull();
      expect(await store().transaction({}, (tx) => tx.lockContext(created.contextId))).toBeNull();
    });

    it("rolls back everything when the work throws", async () => {
      const created = makeContext();
      const failure = new AppError("SYNC_CONFLICT", "stale");
      await expect(
        store().transaction({}, async (tx) => {
          await tx.insertContext(created);
          throw failure;
        }),
      ).rejects.toBe(failure);
      expect(await store().getContext({}, created.contextId, { withState: false })).toBeNull();
    });
  });

  describe("names", () => {
    it("refuses a live duplicate name of the same owner with CONTEXT_EXISTS", async () => {
      await insert(makeContext({ name: "shared-name" }));
      const error = await caught(insert(makeContext({ name: "shared-name" })));
      expect(error.reason).toBe("CONTEXT_EXISTS");
      expect(error.cause).toBeDefined();
      expectClientSafe(error);
    });

    it("refuses a rename onto a live name with CONTEXT_EXISTS", async () => {
      const first = makeContext({ name: "one" });
      const second = makeContext({ name: "two" });
      await insert(first, second);
      const error = await caught(store().transaction({}, (tx) => tx.updateContext({ ...withoutState(second), name: "one" })));
      expect(error.reason).toBe("CONTEXT_EXISTS");
    });

    it("lets another owner use the name, and frees it once the context is TERMINATED", async () => {
      const first = makeContext({ name: "reused" });
      await insert(first, makeContext({ name: "reused", owner: "bob" }));
      await store().transaction({}, (tx) => tx.updateContext({ ...withoutState(first), status: "TERMINATED", revision: 2 }));
      const again = makeContext({ name: "reused" });
      await insert(again);
      expect((await store().getContext({}, again.contextId, { withState: false }))?.name).toBe("reused");
    });
  });

  describe("listContexts", () => {
    it("pages newest first with a keyset, counts the total, and shows only readable contexts", async () => {
      const mine = [0, 1, 2, 3].map((i) => makeContext({ owner: "alice", createdAt: at(i * 1000) }));
      const bobPublic = makeContext({ owner: "bob", visibility: "PUBLIC", createdAt: at(1500) });
      const bobPrivate = makeContext({ owner: "bob", visibility: "PRIVATE", createdAt: at(2500) });
      await insert(...mine, bobPublic, bobPrivate);

      const expected = [mine[3], mine[2], bobPublic, mine[1], mine[0]].map((c) => c!.contextId);
      const seen: string[] = [];
      let after: { createdAt: Date; contextId: string } | undefined;
      for (;;) {
        const page = await store().listContexts({}, { principal: "alice", filter: {}, limit: 2, ...(after ? { after } : {}) });
        expect(page.totalSize).toBe(5);
        expect(page.contexts.every((c) => !("sharedState" in c))).toBe(true);
        seen.push(...page.contexts.map((c) => c.contextId));
        const last = page.contexts.at(-1);
        if (page.contexts.length < 2 || last === undefined) break;
        after = { createdAt: last.createdAt, contextId: last.contextId };
      }
      expect(seen).toEqual(expected);

      const bobView = await store().listContexts({}, { principal: "bob", filter: {}, limit: 10 });
      expect(new Set(bobView.contexts.map((c) => c.contextId))).toEqual(new Set([bobPublic.contextId, bobPrivate.contextId]));
    });

    it("breaks ties on created_at by context_id, descending", async () => {
      const twins = [makeContext({ createdAt: at(0) }), makeContext({ createdAt: at(0) }), makeContext({ createdAt: at(0) })];
      await insert(...twins);
      const ids = twins.map((c) => c.contextId).sort().reverse();
      const first = await store().listContexts({}, { principal: "alice", filter: {}, limit: 1 });
      expect(first.contexts.map((c) => c.contextId)).toEqual([ids[0]]);
      const rest = await store().listContexts({}, {
        principal: "alice",
        filter: {},
        limit: 10,
        after: { createdAt: at(0), contextId: ids[0]! },
      });
      expect(rest.contexts.map((c) => c.contextId)).toEqual(ids.slice(1));
    });

    it("filters by type, status, stage, owner, tag and a literal name prefix", async () => {
      const a = makeContext({ name: "100%_done", type: "PIPELINE", tags: ["red"], createdAt: at(1) });
      const b = makeContext({ name: "100xydone", status: "PAUSED", lifecycleStage: "EXECUTING", tags: ["blue"], createdAt: at(2) });
      const c = makeContext({ name: "back\\slash", owner: "bob", visibility: "PUBLIC", tags: ["red", "blue"], createdAt: at(3) });
      await insert(a, b, c);
      const ids = async (filter: object) => {
        const result = await store().listContexts({}, { principal: "alice", filter, limit: 10 });
        expect(result.totalSize).toBe(result.contexts.length);
        return result.contexts.map((x) => x.contextId);
      };
      expect(await ids({ type: "PIPELINE" })).toEqual([a.contextId]);
      expect(await ids({ status: "PAUSED" })).toEqual([b.contextId]);
      expect(await ids({ lifecycleStage: "EXECUTING" })).toEqual([b.contextId]);
      expect(await ids({ owner: "bob" })).toEqual([c.contextId]);
      expect(await ids({ tag: "red" })).toEqual([c.contextId, a.contextId]);
      expect(await ids({ tag: "blue", owner: "alice" })).toEqual([b.contextId]);
      expect(await ids({ namePrefix: "100%_" })).toEqual([a.contextId]);
      expect(await ids({ namePrefix: "100" })).toEqual([b.contextId, a.contextId]);
      expect(await ids({ namePrefix: "back\\" })).toEqual([c.contextId]);
      expect(await ids({ namePrefix: "back_" })).toEqual([]);
    });
  });

  describe("events", () => {
    it("appends and lists events in (revision, seq) order from a position, surviving the context", async () => {
      const created = makeContext();
      await insert(created);
      const snapshot = withoutState(created);
      const events = [event(created.contextId, 2, 0, snapshot), event(created.contextId, 1, 0, snapshot), event(created.contextId, 1, 1, snapshot)];
      await store().transaction({}, (tx) => tx.appendEvents(events));
      await store().transaction({}, async (tx) => {
        await tx.appendEvents([event(created.contextId, 3, 0, snapshot)]);
        await tx.deleteContext(created.contextId);
      });

      const all = await store().listEvents({}, created.contextId, { revision: 0, seq: 0 }, 100);
      expect(all.map((e) => [e.revision, e.seq])).toEqual([[1, 0], [1, 1], [2, 0], [3, 0]]);
      expect(all[0]).toEqual(events[1]);
      const payload = all[0]?.payload;
      expect(payload?.kind === "context" ? payload.context.createdAt : undefined).toEqual(created.createdAt);

      const from = await store().listEvents({}, created.contextId, { revision: 1, seq: 1 }, 2);
      expect(from.map((e) => [e.revision, e.seq])).toEqual([[1, 1], [2, 0]]);
      expect(await store().listEvents({}, randomUUID(), { revision: 0, seq: 0 }, 10)).toEqual([]);
    });
  });

  describe("claimRequest", () => {
    const key = { principal: "alice", requestId: "req-1", method: "CreateContext" };

    it("claims a new key, replays the saved result, and frees a key older than 24 hours", async () => {
      let now = at(0);
      const clock: Clock = { now: () => now };
      expect(await store(clock).transaction({}, async (tx) => {
        const claim = await tx.claimRequest(key);
        await tx.saveRequestResult(key, { contextId: "c1", n: [1, 2] });
        return claim;
      })).toBeNull();

      now = at(23 * 3_600_000);
      expect(await store(clock).transaction({}, (tx) => tx.claimRequest(key))).toEqual({
        method: "CreateContext",
        result: { contextId: "c1", n: [1, 2] },
      });
      // The same request_id under another principal is another key.
      expect(await store(clock).transaction({}, (tx) => tx.claimRequest({ ...key, principal: "bob" }))).toBeNull();

      now = at(25 * 3_600_000);
      expect(await store(clock).transaction({}, (tx) => tx.claimRequest({ ...key, method: "UpdateSharedState" }))).toBeNull();
      expect(await store(clock).transaction({}, (tx) => tx.claimRequest(key))).toEqual({ method: "UpdateSharedState", result: null });
    });

    it("leaves no claim behind when the claiming transaction rolls back", async () => {
      await expect(
        store().transaction({}, async (tx) => {
          await tx.claimRequest(key);
          throw new AppError("CONTEXT_EXISTS", "clash");
        }),
      ).rejects.toThrow("clash");
      expect(await store().transaction({}, (tx) => tx.claimRequest(key))).toBeNull();
    });
  });

  describe("contextStatistics", () => {
    it("groups readable contexts by status, stage and type with participant figures as numbers", async () => {
      await insert(
        makeContext({ participantCount: 2 }),
        makeContext({ participantCount: 5 }),
        makeContext({ status: "PAUSED", type: "PIPELINE", participantCount: 1 }),
        makeContext({ owner: "bob", visibility: "PUBLIC", participantCount: 4 }),
        makeContext({ owner: "bob", visibility: "PRIVATE", participantCount: 100 }),
      );
      const groups = await store().contextStatistics({}, "alice");
      expect(groups).toEqual([
        { status: "ACTIVE", lifecycleStage: "PLANNING", type: "COLLABORATIVE", contexts: 3, participants: 11, maxParticipants: 5 },
        { status: "PAUSED", lifecycleStage: "PLANNING", type: "PIPELINE", contexts: 1, participants: 1, maxParticipants: 1 },
      ]);
      expect(await store().contextStatistics({}, "nobody")).toEqual([
        { status: "ACTIVE", lifecycleStage: "PLANNING", type: "COLLABORATIVE", contexts: 1, participants: 4, maxParticipants: 4 },
      ]);
    });
  });

  describe("deadlines", () => {
    it("fails with TIMEOUT, doing nothing, when the deadline has already passed", async () => {
      const created = makeContext();
      let ran = false;
      const error = await caught(
        store().transaction({ deadline: Date.now() - 1 }, async (tx) => {
          ran = true;
          await tx.insertContext(created);
        }),
      );
      expect(error.reason).toBe("TIMEOUT");
      expect(ran).toBe(false);
      expect((await caught(store().getContext({ deadline: Date.now() - 1 }, created.contextId, { withState: false }))).reason).toBe("TIMEOUT");
      expect((await caught(store().listContexts({ deadline: Date.now() }, { principal: "alice", filter: {}, limit: 1 }))).reason).toBe("TIMEOUT");
      expect(await store().getContext({}, created.contextId, { withState: false })).toBeNull();
    });

    it("runs calls whose deadline is still ahead", async () => {
      const created = makeContext();
      const call = { deadline: Date.now() + 20_000 };
      await store().transaction(call, (tx) => tx.insertContext(created));
      expect((await store().getContext(call, created.contextId, { withState: true }))?.sharedState).toEqual(STATE);
      expect((await store().listContexts(call, { principal: "alice", filter: {}, limit: 5 })).totalSize).toBe(1);
      expect(await store().contextStatistics(call, "alice")).toHaveLength(1);
      expect(await store().listEvents(call, created.contextId, { revision: 0, seq: 0 }, 5)).toEqual([]);
    });

    it.runIf(under.kind === "postgres")("cancels a statement blocked on a row lock when the deadline passes", async () => {
      const created = makeContext();
      await insert(created);
      let release!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      let locked!: () => void;
      const isLocked = new Promise<void>((resolve) => (locked = resolve));
      // Another connection holds the row lock until told to let go.
      const holder = store().transaction({}, async (tx) => {
        await tx.lockContext(created.contextId);
        locked();
        await released;
      });
      await isLocked;
      try {
        const error = await caught(
          store().transaction({ deadline: Date.now() + 300 }, (tx) => tx.lockContext(created.contextId)),
        );
        expect(error.reason).toBe("TIMEOUT");
        // 57014 came from the server: Postgres itself stopped the statement, not a JS timer.
        expect(sqlStateOf(error.cause)).toBe("57014");
        expectClientSafe(error);
      } finally {
        release();
        await holder;
      }
    });
  });

  describe("database errors", () => {
    it("reports an unexpected failure as INTERNAL_ERROR without SQL or driver text", async () => {
      const created = makeContext();
      await insert(created);
      const twice = event(created.contextId, 1, 0, withoutState(created));
      await store().transaction({}, (tx) => tx.appendEvents([twice]));
      // A unique violation on another constraint than the name index is not CONTEXT_EXISTS.
      const duplicate = await caught(store().transaction({}, (tx) => tx.appendEvents([twice])));
      expect(duplicate.reason).toBe("INTERNAL_ERROR");
      expect(sqlStateOf(duplicate.cause)).toBe("23505");
      expectClientSafe(duplicate);

      const malformed = await caught(store().getContext({}, "not-a-uuid", { withState: false }));
      expect(malformed.reason).toBe("INTERNAL_ERROR");
      expect(sqlStateOf(malformed.cause)).toBe("22P02");
      expectClientSafe(malformed);
    });
  });
});
