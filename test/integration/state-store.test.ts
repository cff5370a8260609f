/**
 * Versioned shared state in the store: the retention columns, the state column, snapshots,
 * STATE_CHANGED events and the heads the watch hub reconciles with, on PGlite and Postgres.
 */
import { randomUUID } from "node:crypto";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import type { Context } from "../../src/domain/context.js";
import { emptySharedState, type SharedState } from "../../src/domain/shared-state.js";
import { PgContextStore } from "../../src/store/context-store.js";
import { stateSnapshots } from "../../src/store/schema.js";
import { event, makeContext, STATE, stateEvent, withoutState, type NewContext } from "../support/context-fixtures.js";
import { describeOnStores } from "../support/databases.js";

/** STATE with one variable changed, so snapshots of different revisions differ. */
function stateAt(revision: number): SharedState {
  return { ...STATE, variables: { ...STATE.variables, revision } };
}

await describeOnStores("PgContextStore shared state", (under) => {
  const store = () => new PgContextStore(under.database());
  const insert = (...all: NewContext[]) =>
    store().transaction({}, async (tx) => {
      for (const c of all) await tx.insertContext(c);
    });
  const snapshotRevisions = async (contextId: string) =>
    (
      await under
        .database()
        .db.select({ revision: stateSnapshots.revision })
        .from(stateSnapshots)
        .where(eq(stateSnapshots.contextId, contextId))
        .orderBy(stateSnapshots.revision)
    ).map((r) => r.revision);

  describe("columns", () => {
    it("round-trips compact_revision and state_snapshot_revision on insert and update", async () => {
      const created = makeContext({ revision: 12, compactRevision: 5, stateSnapshotRevision: 9 });
      await insert(created);
      expect(await store().getContext({}, created.contextId, { withState: false })).toMatchObject({
        compactRevision: 5,
        stateSnapshotRevision: 9,
      });

      // Written verbatim: the store keeps no rule of its own about them (not even monotonicity).
      const changed: Context = { ...withoutState(created), revision: 13, compactRevision: 2 ** 40, stateSnapshotRevision: 0 };
      await store().transaction({}, (tx) => tx.updateContext(changed));
      expect(await store().getContext({}, created.contextId, { withState: false })).toEqual(changed);
    });

    it("lockContext reads shared state only with withState", async () => {
      const created = makeContext();
      await insert(created);
      await store().transaction({}, async (tx) => {
        const bare = await tx.lockContext(created.contextId);
        expect(bare).not.toHaveProperty("sharedState");
        expect(await tx.lockContext(created.contextId, { withState: true })).toEqual(created);
        expect(await tx.lockContext(randomUUID(), { withState: true })).toBeNull();
      });
    });

    it("updateSharedState writes the state and nothing else", async () => {
      const created = makeContext();
      await insert(created);
      const next = stateAt(2);
      await store().transaction({}, async (tx) => {
        await tx.lockContext(created.contextId);
        await tx.updateSharedState(created.contextId, next);
      });
      expect(await store().getContext({}, created.contextId, { withState: true })).toEqual({ ...created, sharedState: next });
      await store().transaction({}, (tx) => tx.updateSharedState(created.contextId, emptySharedState()));
      expect((await store().getContext({}, created.contextId, { withState: true }))?.sharedState).toEqual(emptySharedState());
    });
  });

  describe("snapshots", () => {
    it("finds the newest snapshot at or before a revision", async () => {
      const created = makeContext();
      await insert(created);
      await store().transaction({}, async (tx) => {
        for (const revision of [1, 5, 9]) await tx.saveStateSnapshot(created.contextId, revision, stateAt(revision));
      });
      const read = (revision: number) => store().stateSnapshotAtOrBefore({}, created.contextId, revision);
      expect(await read(0)).toBeNull();
      expect(await read(1)).toEqual({ revision: 1, state: stateAt(1) });
      expect(await read(4)).toEqual({ revision: 1, state: stateAt(1) });
      expect(await read(5)).toEqual({ revision: 5, state: stateAt(5) });
      expect(await read(1_000)).toEqual({ revision: 9, state: stateAt(9) });
      expect(await store().stateSnapshotAtOrBefore({}, randomUUID(), 1_000)).toBeNull();
    });

    it("keeps the first copy when a revision is saved twice", async () => {
      const created = makeContext();
      await insert(created);
      await store().transaction({}, (tx) => tx.saveStateSnapshot(created.contextId, 3, stateAt(3)));
      await store().transaction({}, (tx) => tx.saveStateSnapshot(created.contextId, 3, emptySharedState()));
      expect(await store().stateSnapshotAtOrBefore({}, created.contextId, 3)).toEqual({ revision: 3, state: stateAt(3) });
    });

    it("go with their context", async () => {
      const [doomed, kept] = [makeContext(), makeContext()];
      await insert(doomed, kept);
      await store().transaction({}, async (tx) => {
        await tx.saveStateSnapshot(doomed.contextId, 1, STATE);
        await tx.saveStateSnapshot(doomed.contextId, 2, STATE);
        await tx.saveStateSnapshot(kept.contextId, 1, STATE);
      });
      await store().transaction({}, (tx) => tx.deleteContext(doomed.contextId));
      expect(await snapshotRevisions(doomed.contextId)).toEqual([]);
      expect(await snapshotRevisions(kept.contextId)).toEqual([1]);
    });
  });

  describe("STATE_CHANGED events", () => {
    it("round-trip their change set with JSON values as they are", async () => {
      const created = makeContext();
      await insert(created);
      const written = stateEvent(created.contextId, 2, 0);
      await store().transaction({}, (tx) => tx.appendEvents([written]));
      expect(await store().listEvents({}, created.contextId, { revision: 0, seq: 0 }, 10)).toEqual([written]);
    });

    it("stateChangesBetween returns only STATE_CHANGED events with after < revision <= upTo, in order", async () => {
      const [created, other] = [makeContext(), makeContext()];
      await insert(created, other);
      const id = created.contextId;
      const replaceOnly = { changes: [], replace: { dependencies: [] }, checksum: "c4" };
      const events = [
        event(id, 1, 0, withoutState(created)),
        stateEvent(id, 2, 0),
        stateEvent(id, 3, 0),
        event(id, 3, 1, withoutState(created)),
        stateEvent(id, 3, 2, replaceOnly),
        stateEvent(id, 4, 0),
        stateEvent(id, 5, 0),
      ];
      await store().transaction({}, (tx) => tx.appendEvents([...events, stateEvent(other.contextId, 3, 0)]));
      const between = async (after: number, upTo: number) =>
        (await store().stateChangesBetween({}, id, after, upTo)).map((e) => [e.revision, e.seq]);
      expect(await between(2, 4)).toEqual([
        [3, 0],
        [3, 2],
        [4, 0],
      ]);
      expect(await between(0, 100)).toEqual([
        [2, 0],
        [3, 0],
        [3, 2],
        [4, 0],
        [5, 0],
      ]);
      expect(await between(5, 100)).toEqual([]);
      expect(await between(3, 3)).toEqual([]);
      expect((await store().stateChangesBetween({}, id, 2, 3))[1]).toEqual(events[4]);
    });
  });

  describe("heads", () => {
    it("gives the revision of each context that still exists, in one query", async () => {
      const [a, b, gone] = [makeContext({ revision: 3 }), makeContext({ revision: 2 ** 40 }), makeContext({ revision: 7 })];
      await insert(a, b, gone);
      await store().transaction({}, (tx) => tx.deleteContext(gone.contextId));
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
