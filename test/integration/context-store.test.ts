import { randomUUID } from "node:crypto";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { AppError } from "../../src/domain/app-error.js";
import type { Context } from "../../src/domain/context.js";
import type { Clock, ContextChange, RequestKey } from "../../src/service/ports.js";
import { changeStatement } from "../../src/store/change-sql.js";
import { PgContextStore } from "../../src/store/context-store.js";
import { contexts } from "../../src/store/schema.js";
import type { SqlCounters } from "../../src/store/sql-client.js";
import { caught, expectClientSafe, sqlStateOf } from "../support/app-error-assertions.js";
import { at, BASE, event, makeContext, STATE, withoutState, type NewContext } from "../support/context-fixtures.js";
import { describeOnStores } from "../support/databases.js";
import { signal } from "../support/lock-waits.js";
import { makeParticipant } from "../support/participant-fixtures.js";
import { applied, creation, current, deletion, revision, seed } from "../support/store-seeding.js";

const HOUR = 3_600_000;

await describeOnStores(PgContextStore.name, (under) => {
  const store = (clock?: Clock) => new PgContextStore(under.database(), clock ? { clock } : {});
  const insert = (...all: NewContext[]) => seed(store(), ...all);
  const eventsOf = (contextId: string) => store().listEvents({}, contextId, { revision: 0, seq: 0 }, 1_000);
  const query = (contextId: string) => ({ contextId, withState: false, agents: [] });

  describe("create, read, update, delete", () => {
    it("round-trips every field, dates exact to the millisecond", async () => {
      const created = makeContext({ expiresAt: at(3_600_000) });
      const outcome = applied(await store().apply({}, creation(created)));
      expect(outcome).toEqual({ applied: true, context: withoutState(created), updated: [] });

      expect(await store().getContext({}, created.contextId, { withState: true })).toEqual(created);
      const basic = await store().getContext({}, created.contextId, { withState: false });
      expect(basic).toEqual(withoutState(created));
      expect(basic).not.toHaveProperty("sharedState");
      expect(basic?.createdAt.getTime()).toBe(BASE);

      expect((await store().loadBase({}, query(created.contextId)))?.context).toEqual(withoutState(created));
      const locked = await store().transaction({}, (tx) => tx.lockBase(query(created.contextId)));
      expect(locked).toEqual({ base: expect.objectContaining({ context: withoutState(created), cached: false }), prior: null });
    });

    it("updates every column but owner, created_at, session_count and compact_revision; state_snapshot_revision only upwards", async () => {
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
        accessControl: { ...created.accessControl, owner: "mallory", visibility: "PUBLIC", joinPolicy: "INVITATION_ONLY", requiredRoles: ["admin"] },
        metadata: { tags: ["gamma"], category: "", priority: "LOW", customData: {} },
        participantCount: 3,
        sessionCount: 1, // ignored
        revision: 7,
        createdAt: at(999_999), // ignored: created_at never changes
        updatedAt: at(5_001),
        lastActivityAt: at(5_002),
        expiresAt: null,
        compactRevision: 4, // ignored: the sweeper's
        stateSnapshotRevision: 6,
      };
      const stored: Context = {
        ...changed,
        accessControl: { ...changed.accessControl, owner: "alice" },
        createdAt: created.createdAt,
        sessionCount: 0,
        compactRevision: 0,
      };
      const outcome = applied(await store().apply({}, { contextId: created.contextId, baseRevision: 1, context: changed, events: [] }));
      // The outcome carries the bookkeeping columns as stored.
      expect(outcome.context).toMatchObject({ compactRevision: 0, stateSnapshotRevision: 6 });
      expect(await store().getContext({}, created.contextId, { withState: true })).toEqual({ ...stored, sharedState: STATE });
      // The tag filter reads the tags column: it follows metadata.tags.
      const tagged = await store().listContexts({}, { principal: "alice", filter: { tag: "gamma" }, limit: 10 });
      expect(tagged.contexts.map((c) => c.contextId)).toEqual([created.contextId]);

      // A lower state_snapshot_revision does not move it back.
      const lower = applied(await store().apply({}, revision(stored, { stateSnapshotRevision: 2 })));
      expect(lower.context?.stateSnapshotRevision).toBe(6);
      expect((await current(store(), created.contextId)).stateSnapshotRevision).toBe(6);
    });

    it("writes only the revision's own columns for a change that moved nothing else, keeping the rest as stored", async () => {
      const created = makeContext();
      await insert(created);
      const member = makeParticipant(created.contextId, { agentId: "bumped" });
      const base = (await store().loadBase({}, query(created.contextId)))!;
      const next: Context = {
        ...base.context,
        participantCount: 1,
        revision: 2,
        updatedAt: at(7_001),
        lastActivityAt: at(7_002),
        expiresAt: at(9_999_999),
        stateSnapshotRevision: 2,
      };
      const state = { ...STATE, variables: { bumped: true } };
      const change: ContextChange = { contextId: created.contextId, baseRevision: 1, base, context: next, sharedState: state, inserted: [member], events: [] };
      // The short statement: the context's other columns are not in it.
      const [text, params] = changeStatement(change, new Date());
      expect(text).not.toContain("name = n.name");
      expect(Object.keys(JSON.parse(params[2] as string) as object).sort()).toEqual(
        ["expires_at", "last_activity_at", "participant_count", "revision", "state_snapshot_revision", "updated_at"],
      );
      const outcome = applied(await store().apply({}, change));
      expect(outcome.context).toMatchObject({ revision: 2, stateSnapshotRevision: 2 });
      expect(await store().getContext({}, created.contextId, { withState: true })).toEqual({ ...next, sharedState: state });
      expect(await store().getParticipant({}, created.contextId, member.participantId)).toEqual(member);

      // A field the change made anew (not the base's own object) takes the full row, even if equal.
      const renamed: ContextChange = { ...change, baseRevision: 2, context: { ...next, revision: 3, metadata: { ...next.metadata } }, sharedState: undefined, inserted: [] };
      expect(changeStatement(renamed, new Date())[0]).toContain("name = n.name");
      applied(await store().apply({}, { ...renamed, context: { ...renamed.context!, name: "renamed" } }));
      expect(await current(store(), created.contextId)).toMatchObject({ name: "renamed", revision: 3, participantCount: 1 });
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
      const step = async (next: Partial<Context>) => applied(await store().apply({}, revision(await current(store(), created.contextId), next)));
      await step({ status: "TERMINATED", updatedAt: at(10_000), terminatedAt: at(9_999) });
      expect(await terminatedAtOf()).toEqual(at(9_999));
      expect((await store().getContext({}, created.contextId, { withState: false }))?.terminatedAt).toEqual(at(9_999));
      // Verbatim, even a later time or null: the service owns the field.
      await step({ terminatedAt: at(20_000) });
      expect(await terminatedAtOf()).toEqual(at(20_000));
      await step({ terminatedAt: null });
      expect(await terminatedAtOf()).toBeNull();
      // Created as given too.
      const born = makeContext({ status: "TERMINATED", terminatedAt: at(5) });
      await insert(born);
      expect((await store().getContext({}, born.contextId, { withState: true }))?.terminatedAt).toEqual(at(5));
    });

    it("deletes, after which the context reads as null everywhere", async () => {
      const created = makeContext();
      await insert(created);
      expect(await store().apply({}, deletion(await current(store(), created.contextId)))).toEqual({ applied: true, context: null, updated: [] });
      expect(await store().getContext({}, created.contextId, { withState: false })).toBeNull();
      expect(await store().loadBase({}, query(created.contextId))).toBeNull();
      expect(await store().transaction({}, (tx) => tx.lockBase(query(created.contextId)))).toEqual({ base: null, prior: null });
      expect(await store().heads({}, [created.contextId])).toEqual(new Map());
    });

    it("rolls back a transaction's writes when the work throws", async () => {
      const created = makeContext();
      await insert(created);
      const failure = new AppError("SYNC_CONFLICT", "stale");
      await expect(
        store().transaction({}, async (tx) => {
          expect((await tx.lockBase(query(created.contextId))).base).not.toBeNull();
          await tx.keepAlive(created.contextId, at(50_000), null);
          await tx.saveStateSnapshot(created.contextId, 1, STATE);
          throw failure;
        }),
      ).rejects.toBe(failure);
      expect(await store().getContext({}, created.contextId, { withState: false })).toEqual(withoutState(created));
      expect((await store().stateHistory({}, created.contextId, 1))?.snapshot).toBeNull();
    });
  });

  describe("apply: compare-and-set on the base revision", () => {
    it("applies nothing when the context moved past the base, and says so", async () => {
      const created = makeContext();
      await insert(created);
      const base = await current(store(), created.contextId);
      applied(await store().apply({}, revision(base, { name: "first" }, { events: [event(created.contextId, 2, 0, withoutState(created))] })));

      // Decided on revision 1, applied at revision 2: every part of it is dropped.
      const stale = revision(base, { name: "second" }, {
        sharedState: { ...STATE, variables: {} },
        snapshot: true,
        events: [event(created.contextId, 2, 1, withoutState(created))],
      });
      expect(await store().apply({}, stale)).toEqual({ applied: false, reason: "revision" });
      expect(await store().getContext({}, created.contextId, { withState: true })).toMatchObject({ name: "first", revision: 2, sharedState: STATE });
      expect((await eventsOf(created.contextId)).map((e) => [e.revision, e.seq])).toEqual([[2, 0]]);
      expect((await store().stateHistory({}, created.contextId, 2))?.snapshot).toBeNull();
      // A stale delete deletes nothing.
      expect(await store().apply({}, deletion(base))).toEqual({ applied: false, reason: "revision" });
      expect(await store().getContext({}, created.contextId, { withState: false })).not.toBeNull();
    });

    it("answers a create of an id that exists as a stale base (reason revision), writing nothing", async () => {
      const created = makeContext();
      await insert(created);
      const twin = { ...makeContext(), contextId: created.contextId, name: "twin" };
      expect(await store().apply({}, creation(twin))).toEqual({ applied: false, reason: "revision" });
      expect((await current(store(), created.contextId)).name).toBe(created.name);
    });

    it("changes and deletes only a context that exists", async () => {
      const ghost = makeContext();
      expect(await store().apply({}, revision(withoutState(ghost), { name: "boo" }))).toEqual({ applied: false, reason: "revision" });
      expect(await store().apply({}, deletion(withoutState(ghost)))).toEqual({ applied: false, reason: "revision" });
      expect(await store().getContext({}, ghost.contextId, { withState: false })).toBeNull();
    });
  });

  describe("names", () => {
    it("refuses a live duplicate name of the same owner with CONTEXT_EXISTS, writing nothing", async () => {
      await insert(makeContext({ name: "shared-name" }));
      const clash = makeContext({ name: "shared-name" });
      const error = await caught(store().apply({}, creation(clash, { events: [event(clash.contextId, 1, 0, withoutState(clash))] })));
      expect(error.reason).toBe("CONTEXT_EXISTS");
      expect(error.cause).toBeDefined();
      expectClientSafe(error);
      expect(await store().getContext({}, clash.contextId, { withState: false })).toBeNull();
      expect(await eventsOf(clash.contextId)).toEqual([]);
    });

    it("refuses a rename onto a live name with CONTEXT_EXISTS", async () => {
      const first = makeContext({ name: "one" });
      const second = makeContext({ name: "two" });
      await insert(first, second);
      const error = await caught(store().apply({}, revision(withoutState(second), { name: "one" })));
      expect(error.reason).toBe("CONTEXT_EXISTS");
      expect(await current(store(), second.contextId)).toEqual(withoutState(second));
    });

    it("lets another owner use the name, and frees it once the context is TERMINATED", async () => {
      const first = makeContext({ name: "reused" });
      await insert(first, makeContext({ name: "reused", owner: "bob" }));
      applied(await store().apply({}, revision(withoutState(first), { status: "TERMINATED" })));
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
    it("writes each change's events and lists them in (revision, seq) order from a position, surviving the context", async () => {
      const created = makeContext();
      const snapshot = withoutState(created);
      const first = [event(created.contextId, 1, 1, snapshot), event(created.contextId, 1, 0, snapshot)];
      applied(await store().apply({}, creation(created, { events: first })));
      applied(await store().apply({}, revision(snapshot, {}, { events: [event(created.contextId, 2, 0, snapshot)] })));
      applied(await store().apply({}, deletion({ ...snapshot, revision: 2 }, [event(created.contextId, 3, 0, snapshot)])));

      const all = await eventsOf(created.contextId);
      expect(all.map((e) => [e.revision, e.seq])).toEqual([[1, 0], [1, 1], [2, 0], [3, 0]]);
      expect(all[0]).toEqual(first[1]);
      const payload = all[0]?.payload;
      expect(payload?.kind === "context" ? payload.context.createdAt : undefined).toEqual(created.createdAt);

      const from = await store().listEvents({}, created.contextId, { revision: 1, seq: 1 }, 2);
      expect(from.map((e) => [e.revision, e.seq])).toEqual([[1, 1], [2, 0]]);
      expect(await store().listEvents({}, randomUUID(), { revision: 0, seq: 0 }, 10)).toEqual([]);
    });
  });

  describe("request keys", () => {
    const key: RequestKey = { principal: "alice", requestId: "req-1", method: "CreateContext" };
    const keyed = (change: ContextChange, result: unknown, k: RequestKey = key): ContextChange => ({
      ...change,
      request: { key: k, result: result as never },
    });

    it("applies a change with a new key and saves its result; a second change with the key writes nothing and gets it", async () => {
      let now = at(0);
      const clock: Clock = { now: () => now };
      const first = makeContext();
      applied(await store(clock).apply({}, keyed(creation(first), { contextId: first.contextId, n: [1, 2] })));
      const saved = { method: "CreateContext", result: { contextId: first.contextId, n: [1, 2] } };
      expect(await store(clock).storedResult({}, key)).toEqual(saved);

      now = at(23 * HOUR);
      const second = makeContext();
      const replay = keyed(creation(second, { events: [event(second.contextId, 1, 0, withoutState(second))] }), "other");
      expect(await store(clock).apply({}, replay)).toEqual({ applied: false, reason: "request", prior: saved });
      expect(await store().getContext({}, second.contextId, { withState: false })).toBeNull();
      expect(await eventsOf(second.contextId)).toEqual([]);
      // An update with the taken key is refused the same way, its base current or not.
      expect(await store(clock).apply({}, keyed(revision(withoutState(first), { name: "renamed" }), null))).toEqual({
        applied: false,
        reason: "request",
        prior: saved,
      });
      expect(await current(store(), first.contextId)).toEqual(withoutState(first));

      // The same request_id under another principal is another key.
      const bobs = makeContext({ owner: "bob" });
      applied(await store(clock).apply({}, keyed(creation(bobs), 1, { ...key, principal: "bob" })));

      // Older than 24 hours: the key is free, and a change with it takes it over.
      now = at(25 * HOUR);
      expect(await store(clock).storedResult({}, key)).toBeNull();
      const renamed = applied(
        await store(clock).apply({}, keyed(revision(withoutState(first), { name: "renamed" }), { n: 2 }, { ...key, method: "UpdateContext" })),
      );
      expect(renamed.context?.name).toBe("renamed");
      expect(await store(clock).storedResult({}, key)).toEqual({ method: "UpdateContext", result: { n: 2 } });
    });

    it("leaves no key behind when the change does not apply or fails", async () => {
      const created = makeContext({ name: "taken" });
      await insert(created);
      applied(await store().apply({}, revision(withoutState(created), {})));
      expect(await store().apply({}, keyed(revision(withoutState(created), { name: "late" }), "x"))).toEqual({ applied: false, reason: "revision" });
      expect(await store().storedResult({}, key)).toBeNull();

      const clash = makeContext({ name: "taken" });
      expect((await caught(store().apply({}, keyed(creation(clash), "y")))).reason).toBe("CONTEXT_EXISTS");
      expect(await store().storedResult({}, key)).toBeNull();

      // The key is still new.
      applied(await store().apply({}, keyed(creation(makeContext()), "z")));
      expect(await store().storedResult({}, key)).toEqual({ method: "CreateContext", result: "z" });
    });

    it("is read under the lock on the locked path", async () => {
      const created = makeContext();
      applied(await store().apply({}, keyed(creation(created), { ok: true })));
      const locked = await store().transaction({}, (tx) => tx.lockBase(query(created.contextId), key));
      expect(locked.prior).toEqual({ method: "CreateContext", result: { ok: true } });
      expect(locked.base?.context).toEqual(withoutState(created));
      const fresh = await store().transaction({}, (tx) => tx.lockBase(query(created.contextId), { ...key, requestId: "req-2" }));
      expect(fresh.prior).toBeNull();
    });
  });

  describe("applyAll", () => {
    const key: RequestKey = { principal: "alice", requestId: "batch-1", method: "CreateContext" };

    it("applies several changes in one transaction and answers each", async () => {
      const [a, b] = [makeContext(), makeContext()];
      const outcomes = await store().applyAll({}, [creation(a), creation(b)]);
      expect(outcomes).toEqual([
        { applied: true, context: withoutState(a), updated: [] },
        { applied: true, context: withoutState(b), updated: [] },
      ]);
      expect(await store().heads({}, [a.contextId, b.contextId])).toEqual(new Map([[a.contextId, 1], [b.contextId, 1]]));
    });

    it("writes none of them when one fails", async () => {
      await insert(makeContext({ name: "taken" }));
      const [fine, clash] = [makeContext(), makeContext({ name: "taken" })];
      const error = await caught(store().applyAll({}, [{ ...creation(fine), request: { key, result: 1 } }, creation(clash)]));
      expect(error.reason).toBe("CONTEXT_EXISTS");
      expect(await store().getContext({}, fine.contextId, { withState: false })).toBeNull();
      expect(await store().storedResult({}, key)).toBeNull();
    });

    it("skips a change whose request key was taken, answering its saved result, and applies the others", async () => {
      const first = makeContext();
      applied(await store().apply({}, { ...creation(first), request: { key, result: { id: first.contextId } } }));
      const [replayed, other] = [makeContext(), makeContext()];
      const outcomes = await store().applyAll({}, [{ ...creation(replayed), request: { key, result: "again" } }, creation(other)]);
      expect(outcomes).toEqual([
        { applied: false, reason: "request", prior: { method: "CreateContext", result: { id: first.contextId } } },
        { applied: true, context: withoutState(other), updated: [] },
      ]);
      expect(await store().getContext({}, replayed.contextId, { withState: false })).toBeNull();
      expect(await store().getContext({}, other.contextId, { withState: false })).not.toBeNull();
    });

    it("reports a stale change as such and applies the others", async () => {
      const created = makeContext();
      await insert(created);
      applied(await store().apply({}, revision(withoutState(created), {})));
      const fresh = makeContext();
      const outcomes = await store().applyAll({}, [revision(withoutState(created), { name: "late" }), creation(fresh)]);
      expect(outcomes).toEqual([{ applied: false, reason: "revision" }, { applied: true, context: withoutState(fresh), updated: [] }]);
      expect((await current(store(), created.contextId)).name).toBe(created.name);
    });
  });

  describe("round trips (database.sql.counters)", () => {
    const delta = async (work: () => Promise<unknown>): Promise<SqlCounters> => {
      const before = under.database().sql.counters;
      await work();
      const after = under.database().sql.counters;
      return {
        statements: after.statements - before.statements,
        roundTrips: after.roundTrips - before.roundTrips,
        transactions: after.transactions - before.transactions,
      };
    };
    const one = { statements: 1, roundTrips: 1, transactions: 0 };

    it("sends one apply as one statement in one round trip, with no transaction (stale or not)", async () => {
      const created = makeContext();
      expect(await delta(() => store().apply({}, creation(created)))).toEqual(one);
      expect(await delta(() => store().apply({}, revision(withoutState(created), { name: "b" })))).toEqual(one);
      expect(await delta(() => store().apply({}, revision(withoutState(created), { name: "c" })))).toEqual(one);
      expect(await delta(() => store().apply({}, { ...revision({ ...withoutState(created), revision: 2 }, {}), request: { key: { principal: "a", requestId: "r", method: "M" }, result: 1 } }))).toEqual(one);
      expect(await delta(() => store().loadBase({}, query(created.contextId)))).toEqual(one);
      expect(await delta(() => store().stateHistory({}, created.contextId, 1))).toEqual(one);
    });

    it("sends a locked write in two round trips and one transaction", async () => {
      const created = makeContext();
      await insert(created);
      const locked = (key?: RequestKey) =>
        store().transaction({}, async (tx) => {
          const { base } = await tx.lockBase(query(created.contextId), key);
          applied(await tx.finish(revision(base!.context, {})));
        });
      // BEGIN + the locked base read, then the change + COMMIT.
      expect(await delta(() => locked())).toEqual({ statements: 4, roundTrips: 2, transactions: 1 });
      // With a request key, its stored result is read in the first batch too.
      expect(await delta(() => locked({ principal: "alice", requestId: "r", method: "M" }))).toEqual({
        statements: 5,
        roundTrips: 2,
        transactions: 1,
      });
    });

    it("counts nothing for a call whose deadline has already passed", async () => {
      const created = makeContext();
      expect(await delta(() => caught(store().apply({ deadline: Date.now() - 1 }, creation(created))))).toEqual({
        statements: 0,
        roundTrips: 0,
        transactions: 0,
      });
    });

    it("sends applyAll in one round trip and one transaction", async () => {
      expect(await delta(() => store().applyAll({}, [creation(makeContext()), creation(makeContext())]))).toEqual({
        statements: 4,
        roundTrips: 1,
        transactions: 1,
      });
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
      const past = () => ({ deadline: Date.now() - 1 });
      expect((await caught(store().apply(past(), creation(created)))).reason).toBe("TIMEOUT");
      expect((await caught(store().applyAll(past(), [creation(created)]))).reason).toBe("TIMEOUT");
      let ran = false;
      const error = await caught(
        store().transaction(past(), async (tx) => {
          ran = true;
          await tx.finish(creation(created));
        }),
      );
      expect(error.reason).toBe("TIMEOUT");
      expect(ran).toBe(false);
      expect((await caught(store().getContext(past(), created.contextId, { withState: false }))).reason).toBe("TIMEOUT");
      expect((await caught(store().loadBase(past(), query(created.contextId)))).reason).toBe("TIMEOUT");
      expect((await caught(store().listContexts({ deadline: Date.now() }, { principal: "alice", filter: {}, limit: 1 }))).reason).toBe("TIMEOUT");
      expect(await store().getContext({}, created.contextId, { withState: false })).toBeNull();
      expect(await eventsOf(created.contextId)).toEqual([]);
    });

    it("runs calls whose deadline is still ahead", async () => {
      const created = makeContext();
      const call = { deadline: Date.now() + 20_000 };
      applied(await store().apply(call, creation(created)));
      applied((await store().applyAll(call, [revision(withoutState(created), {})]))[0]!);
      expect((await store().getContext(call, created.contextId, { withState: true }))?.sharedState).toEqual(STATE);
      expect((await store().loadBase(call, query(created.contextId)))?.context.revision).toBe(2);
      expect((await store().listContexts(call, { principal: "alice", filter: {}, limit: 5 })).totalSize).toBe(1);
      expect(await store().contextStatistics(call, "alice")).toHaveLength(1);
      expect(await store().listEvents(call, created.contextId, { revision: 0, seq: 0 }, 5)).toEqual([]);
    });

    it.runIf(under.kind === "postgres")("cancels a statement blocked on a row lock when the deadline passes, applying nothing", async () => {
      const created = makeContext();
      await insert(created);
      const released = signal();
      const locked = signal();
      // Another connection holds the row lock until told to let go.
      const holder = store().transaction({}, async (tx) => {
        await tx.lockBase(query(created.contextId));
        locked.fire();
        await released.promise;
      });
      await locked.promise;
      try {
        const blockedLock = await caught(store().transaction({ deadline: Date.now() + 300 }, (tx) => tx.lockBase(query(created.contextId))));
        expect(blockedLock.reason).toBe("TIMEOUT");
        // 57014 came from the server: Postgres itself stopped the statement, not a JS timer.
        expect(sqlStateOf(blockedLock.cause)).toBe("57014");
        expectClientSafe(blockedLock);

        // The single-statement write waits for the same lock, and is cancelled with no transaction around it.
        const change = revision(withoutState(created), { name: "late" }, { events: [event(created.contextId, 2, 0, withoutState(created))] });
        const blockedApply = await caught(store().apply({ deadline: Date.now() + 300 }, change));
        expect(blockedApply.reason).toBe("TIMEOUT");
        expect(sqlStateOf(blockedApply.cause)).toBe("57014");
      } finally {
        released.fire();
        await holder;
      }
      expect(await current(store(), created.contextId)).toEqual(withoutState(created));
      expect(await eventsOf(created.contextId)).toEqual([]);
    });
  });

  describe("database errors", () => {
    it("reports an unexpected failure as INTERNAL_ERROR without SQL or driver text, writing nothing", async () => {
      const created = makeContext();
      const twice = event(created.contextId, 1, 0, withoutState(created));
      applied(await store().apply({}, creation(created, { events: [twice] })));
      // A unique violation on another constraint than the name index is not CONTEXT_EXISTS.
      const duplicate = await caught(store().apply({}, revision(withoutState(created), { name: "moved" }, { events: [twice] })));
      expect(duplicate.reason).toBe("INTERNAL_ERROR");
      expect(sqlStateOf(duplicate.cause)).toBe("23505");
      expectClientSafe(duplicate);
      // One statement: the context row did not move either.
      expect(await current(store(), created.contextId)).toEqual(withoutState(created));

      const malformed = await caught(store().getContext({}, "not-a-uuid", { withState: false }));
      expect(malformed.reason).toBe("INTERNAL_ERROR");
      expect(sqlStateOf(malformed.cause)).toBe("22P02");
      expectClientSafe(malformed);
    });
  });
});
