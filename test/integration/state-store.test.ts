/**
 * Versioned shared state in the store: the retention columns, the state column, snapshots,
 * STATE_CHANGED events and the heads the watch hub reconciles with, on PGlite and Postgres.
 */
import { randomUUID } from "node:crypto";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { emptySharedState, type SharedState } from "../../src/domain/shared-state.js";
import { PgContextStore } from "../../src/store/context-store.js";
import { stateSnapshots } from "../../src/store/schema.js";
import { CHANGE_SET, event, makeContext, STATE, stateEvent, withoutState, type NewContext } from "../support/context-fixtures.js";
import { describeOnStores } from "../support/databases.js";
import { applied, creation, current, remove, revision, seed } from "../support/store-seeding.js";

/** STATE with one variable changed, so snapshots of different revisions differ. */
function stateAt(revision: number): SharedState {
  return { ...STATE, variables: { ...STATE.variables, revision } };
}

await describeOnStores("PgContextStore shared state", (under) => {
  const store = () => new PgContextStore(under.database());
  const insert = (...all: NewContext[]) => seed(store(), ...all);
  const query = (contextId: string, withState: boolean) => ({ contextId, withState, agents: [] });
  const snapshotRevisions = async (contextId: string) =>
    (
      await under
        .database()
        .db.select({ revision: stateSnapshots.revision })
        .from(stateSnapshots)
        .where(eq(stateSnapshots.contextId, contextId))
        .orderBy(stateSnapshots.revision)
    ).map((r) => r.revision);
  const saveSnapshots = (contextId: string, revisions: readonly number[], state: (revision: number) => SharedState = stateAt) =>
    store().transaction({}, async (tx) => {
      for (const revision of revisions) await tx.saveStateSnapshot(contextId, revision, state(revision));
    });

  describe("columns", () => {
    it("creates compact_revision and state_snapshot_revision as given; a change never writes the first, and the second only upwards", async () => {
      const created = makeContext({ revision: 12, compactRevision: 5, stateSnapshotRevision: 9 });
      await insert(created);
      expect(await store().getContext({}, created.contextId, { withState: false })).toMatchObject({
        compactRevision: 5,
        stateSnapshotRevision: 9,
      });

      // compact_revision is the sweeper's; state_snapshot_revision moves up, never down.
      const up = applied(await store().apply({}, revision(withoutState(created), { compactRevision: 2 ** 40, stateSnapshotRevision: 2 ** 40 })));
      expect(up.context).toMatchObject({ revision: 13, compactRevision: 5, stateSnapshotRevision: 2 ** 40 });
      const down = applied(await store().apply({}, revision(up.context!, { compactRevision: 0, stateSnapshotRevision: 0 })));
      expect(down.context).toMatchObject({ revision: 14, compactRevision: 5, stateSnapshotRevision: 2 ** 40 });
      expect(await current(store(), created.contextId)).toEqual(down.context);
    });

    it("reads shared state into a base only with withState", async () => {
      const created = makeContext();
      await insert(created);
      expect((await store().loadBase({}, query(created.contextId, false)))?.context).not.toHaveProperty("sharedState");
      expect((await store().loadBase({}, query(created.contextId, true)))?.context).toEqual(created);
      await store().transaction({}, async (tx) => {
        expect((await tx.lockBase(query(created.contextId, false))).base?.context).not.toHaveProperty("sharedState");
        expect((await tx.lockBase(query(created.contextId, true))).base?.context).toEqual(created);
        expect((await tx.lockBase(query(randomUUID(), true))).base).toBeNull();
      });
    });

    it("writes the shared state only when a change carries it", async () => {
      const created = makeContext();
      await insert(created);
      const renamed = applied(await store().apply({}, revision(withoutState(created), { name: "renamed" })));
      expect((await store().getContext({}, created.contextId, { withState: true }))?.sharedState).toEqual(STATE);
      const next = stateAt(2);
      const changed = applied(await store().apply({}, revision(renamed.context!, {}, { sharedState: next })));
      expect(await store().getContext({}, created.contextId, { withState: true })).toEqual({ ...changed.context, sharedState: next });
      applied(await store().apply({}, revision(changed.context!, {}, { sharedState: emptySharedState() })));
      expect((await store().getContext({}, created.contextId, { withState: true }))?.sharedState).toEqual(emptySharedState());
    });
  });

  describe("snapshots", () => {
    it("are stored by a change with snapshot: the state at its new revision", async () => {
      const created = makeContext({ stateSnapshotRevision: 1 });
      applied(await store().apply({}, creation(created, { snapshot: true })));
      expect(await snapshotRevisions(created.contextId)).toEqual([1]);
      // Without the flag, a change stores none.
      const two = applied(await store().apply({}, revision(withoutState(created), {}, { sharedState: stateAt(2) })));
      const three = applied(await store().apply({}, revision(two.context!, { stateSnapshotRevision: 3 }, { sharedState: stateAt(3), snapshot: true })));
      expect(three.context?.stateSnapshotRevision).toBe(3);
      expect(await snapshotRevisions(created.contextId)).toEqual([1, 3]);
      expect((await store().stateHistory({}, created.contextId, 2))?.snapshot).toEqual({ revision: 1, state: STATE });
      expect((await store().stateHistory({}, created.contextId, 3))?.snapshot).toEqual({ revision: 3, state: stateAt(3) });
    });

    it("the newest at or before a revision comes with the head and compaction horizon", async () => {
      const created = makeContext({ revision: 10, compactRevision: 0 });
      await insert(created);
      await saveSnapshots(created.contextId, [1, 5, 9]);
      const read = (revision: number) => store().stateHistory({}, created.contextId, revision);
      expect(await read(0)).toEqual({ revision: 10, compactRevision: 0, snapshot: null, changes: [] });
      expect((await read(1))?.snapshot).toEqual({ revision: 1, state: stateAt(1) });
      expect((await read(4))?.snapshot).toEqual({ revision: 1, state: stateAt(1) });
      expect((await read(5))?.snapshot).toEqual({ revision: 5, state: stateAt(5) });
      expect((await read(1_000))?.snapshot).toEqual({ revision: 9, state: stateAt(9) });
      expect(await store().stateHistory({}, randomUUID(), 1_000)).toBeNull();
    });

    it("keeps the first copy when a revision is saved twice", async () => {
      const created = makeContext();
      await insert(created);
      await saveSnapshots(created.contextId, [3]);
      await saveSnapshots(created.contextId, [3], () => emptySharedState());
      expect((await store().stateHistory({}, created.contextId, 3))?.snapshot).toEqual({ revision: 3, state: stateAt(3) });
    });

    it("go with their context", async () => {
      const [doomed, kept] = [makeContext(), makeContext()];
      await insert(doomed, kept);
      await saveSnapshots(doomed.contextId, [1, 2]);
      await saveSnapshots(kept.contextId, [1]);
      await remove(store(), doomed.contextId);
      expect(await snapshotRevisions(doomed.contextId)).toEqual([]);
      expect(await snapshotRevisions(kept.contextId)).toEqual([1]);
      expect(await store().stateHistory({}, doomed.contextId, 2)).toBeNull();
    });
  });

  describe("STATE_CHANGED events", () => {
    it("round-trip their change set with JSON values as they are", async () => {
      const created = makeContext();
      await insert(created);
      const written = stateEvent(created.contextId, 2, 0);
      applied(await store().apply({}, revision(withoutState(created), {}, { events: [written] })));
      expect(await store().listEvents({}, created.contextId, { revision: 0, seq: 0 }, 10)).toEqual([written]);
    });

    it("stateHistory gives the STATE_CHANGED change sets after the snapshot up to the revision, in order", async () => {
      const [created, other] = [makeContext({ revision: 5 }), makeContext({ revision: 3 })];
      const id = created.contextId;
      const replaceOnly = { changes: [], replace: { dependencies: [] }, checksum: "c4" };
      const numbered = (n: number) => ({ ...CHANGE_SET, checksum: `c${n}` });
      const events = [
        event(id, 1, 0, withoutState(created)),
        stateEvent(id, 2, 0, numbered(2)),
        stateEvent(id, 3, 0, numbered(3)),
        event(id, 3, 1, withoutState(created)),
        stateEvent(id, 3, 2, replaceOnly),
        stateEvent(id, 4, 0, numbered(4)),
        stateEvent(id, 5, 0, numbered(5)),
      ];
      // The events of a context's whole history, written with it (order of writing is not order of reading).
      applied(await store().apply({}, creation(created, { events: [...events].reverse() })));
      applied(await store().apply({}, creation(other, { events: [stateEvent(other.contextId, 3, 0, numbered(99))] })));
      await saveSnapshots(id, [1, 3]);
      await saveSnapshots(other.contextId, [1]);

      const history = (revision: number) => store().stateHistory({}, id, revision);
      expect(await history(2)).toEqual({ revision: 5, compactRevision: 0, snapshot: { revision: 1, state: stateAt(1) }, changes: [numbered(2)] });
      expect((await history(3))?.changes).toEqual([]);
      expect(await history(4)).toEqual({ revision: 5, compactRevision: 0, snapshot: { revision: 3, state: stateAt(3) }, changes: [numbered(4)] });
      expect((await history(5))?.changes).toEqual([numbered(4), numbered(5)]);
      // Past the head: nothing more than there is.
      expect((await history(100))?.changes).toEqual([numbered(4), numbered(5)]);
      // Another context's change sets are its own.
      const other3 = await store().stateHistory({}, other.contextId, 3);
      expect(other3?.changes).toEqual([numbered(99)]);
    });

    it("stateHistory gives a revision's several change sets in seq order, its other events left out", async () => {
      const created = makeContext({ revision: 4 });
      const id = created.contextId;
      const replaceOnly = { changes: [], replace: { dependencies: [] }, checksum: "c4" };
      applied(
        await store().apply({}, creation(created, {
          events: [stateEvent(id, 3, 2, replaceOnly), event(id, 3, 1, withoutState(created)), stateEvent(id, 3, 0), stateEvent(id, 2, 0)],
        })),
      );
      await saveSnapshots(id, [2]);
      expect((await store().stateHistory({}, id, 4))?.changes).toEqual([CHANGE_SET, replaceOnly]);
    });

    it("stateHistory reports a compaction with what it left, in the same read", async () => {
      const created = makeContext({ revision: 6 });
      const id = created.contextId;
      applied(await store().apply({}, creation(created, { events: [2, 3, 4, 5, 6].map((r) => stateEvent(id, r, 0)) })));
      await saveSnapshots(id, [1, 4]);
      await store().transaction({}, async (tx) => {
        await tx.lockBase(query(id, false));
        await tx.compactHistory(id, 4);
      });
      // The snapshot at 4 is the replay base kept; revisions up to 4 are no longer there to replay.
      expect(await store().stateHistory({}, id, 6)).toEqual({
        revision: 6,
        compactRevision: 4,
        snapshot: { revision: 4, state: stateAt(4) },
        changes: [CHANGE_SET, CHANGE_SET],
      });
      expect(await store().stateHistory({}, id, 3)).toEqual({ revision: 6, compactRevision: 4, snapshot: null, changes: [] });
    });
  });

  describe("heads", () => {
    it("gives the revision of each context that still exists, in one query", async () => {
      const [a, b, gone] = [makeContext({ revision: 3 }), makeContext({ revision: 2 ** 40 }), makeContext({ revision: 7 })];
      await insert(a, b, gone);
      await remove(store(), gone.contextId);
      const heads = await store().heads({}, [a.contextId, b.contextId, gone.contextId, randomUUID()]);
      expect(heads).toEqual(
        new Map([
          [a.contextId, 3],
          [b.contextId, 2 ** 40],
        ]),
      );
      expect(await store().heads({}, [])).toEqual(new Map());
    });

    it("takes thousands of ids in one statement", async () => {
      const created = makeContext({ revision: 4 });
      await insert(created);
      const ids = [...Array.from({ length: 70_000 }, () => randomUUID()), created.contextId];
      expect(await store().heads({ deadline: Date.now() + 20_000 }, ids)).toEqual(new Map([[created.contextId, 4]]));
    });
  });
});
