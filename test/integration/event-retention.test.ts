/**
 * Event retention in the store: compacting a live context's history, finding contexts due for it,
 * and purging the events of deleted contexts, on PGlite and Postgres.
 */
import { randomUUID } from "node:crypto";
import { asc, eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { AppError } from "../../src/domain/app-error.js";
import type { Context } from "../../src/domain/context.js";
import type { ContextEvent } from "../../src/domain/event.js";
import { PgContextStore } from "../../src/store/context-store.js";
import { contextEvents, stateSnapshots } from "../../src/store/schema.js";
import { PgSweepCandidates } from "../../src/store/sweep-queries.js";
import { at, event, makeContext, STATE, stateEvent, withoutState, type NewContext } from "../support/context-fixtures.js";
import { describeOnStores } from "../support/databases.js";
import { applied, creation, deletion, seed } from "../support/store-seeding.js";

await describeOnStores("PgContextStore event retention", (under) => {
  const store = () => new PgContextStore(under.database());
  const insert = (...all: NewContext[]) => seed(store(), ...all);
  const lock = (contextId: string) => ({ contextId, withState: false, agents: [] });
  const eventRevisions = async (contextId: string) =>
    (
      await under
        .database()
        .db.select({ revision: contextEvents.revision })
        .from(contextEvents)
        .where(eq(contextEvents.contextId, contextId))
        .orderBy(asc(contextEvents.revision), asc(contextEvents.seq))
    ).map((r) => r.revision);
  const snapshotRevisions = async (contextId: string) =>
    (
      await under
        .database()
        .db.select({ revision: stateSnapshots.revision })
        .from(stateSnapshots)
        .where(eq(stateSnapshots.contextId, contextId))
        .orderBy(stateSnapshots.revision)
    ).map((r) => r.revision);

  /** A context at `revision` with one state event per revision 1..revision (two at revision 2), written with it. */
  const withHistory = async (revision: number, snapshots: readonly number[], more: (id: string) => readonly ContextEvent[] = () => []) => {
    const context = makeContext({ revision });
    const id = context.contextId;
    const events = [
      event(id, 1, 0, withoutState(context)),
      ...Array.from({ length: revision - 1 }, (_, i) => stateEvent(id, i + 2, 0)),
      event(id, 2, 1, withoutState(context)),
      ...more(id),
    ];
    applied(await store().apply({}, creation(context, { events })));
    await store().transaction({}, async (tx) => {
      for (const s of snapshots) await tx.saveStateSnapshot(id, s, STATE);
    });
    return context;
  };

  describe("compactHistory", () => {
    it("drops events up to upTo and the snapshots older than the newest one at or before it", async () => {
      const context = await withHistory(10, [2, 4, 6, 8]);
      const other = await withHistory(10, [2, 4]);
      await store().transaction({}, async (tx) => {
        expect((await tx.lockBase(lock(context.contextId))).base).not.toBeNull();
        await tx.compactHistory(context.contextId, 7);
      });
      expect(await eventRevisions(context.contextId)).toEqual([8, 9, 10]);
      // 6 is the replay base for revision 7, so it stays; 8 is newer than upTo.
      expect(await snapshotRevisions(context.contextId)).toEqual([6, 8]);
      const read = await store().getContext({}, context.contextId, { withState: false });
      expect(read).toEqual({ ...withoutState(context), compactRevision: 7 });
      // Another context's history is untouched.
      expect(await eventRevisions(other.contextId)).toHaveLength(11);
      expect(await snapshotRevisions(other.contextId)).toEqual([2, 4]);
    });

    it("keeps a snapshot at exactly upTo and every snapshot when none is at or before upTo", async () => {
      const exact = await withHistory(6, [2, 4]);
      const none = await withHistory(6, [5]);
      await store().transaction({}, async (tx) => {
        await tx.compactHistory(exact.contextId, 4);
        await tx.compactHistory(none.contextId, 4);
      });
      expect(await snapshotRevisions(exact.contextId)).toEqual([4]);
      expect(await snapshotRevisions(none.contextId)).toEqual([5]);
      expect(await eventRevisions(none.contextId)).toEqual([5, 6]);
      expect((await store().getContext({}, none.contextId, { withState: false }))?.compactRevision).toBe(4);
    });

    it("rolls back with the caller's transaction", async () => {
      const context = await withHistory(5, [1, 3]);
      const failure = new AppError("SYNC_CONFLICT", "changed my mind");
      await expect(
        store().transaction({}, async (tx) => {
          await tx.compactHistory(context.contextId, 4);
          throw failure;
        }),
      ).rejects.toBe(failure);
      expect(await eventRevisions(context.contextId)).toHaveLength(6);
      expect(await snapshotRevisions(context.contextId)).toEqual([1, 3]);
      expect((await store().getContext({}, context.contextId, { withState: false }))?.compactRevision).toBe(0);
    });

    it("fails CONTEXT_NOT_FOUND for a context that is gone", async () => {
      await expect(store().transaction({}, (tx) => tx.compactHistory(randomUUID(), 3))).rejects.toMatchObject({
        reason: "CONTEXT_NOT_FOUND",
      });
    });
  });

  describe("contextsToCompact", () => {
    it("finds contexts more than retention + slack revisions past compact_revision", async () => {
      const ctx = (revision: number, compactRevision: number) => makeContext({ revision, compactRevision });
      const over = ctx(131, 0); // 131 > 100 + 30
      const atEdge = ctx(130, 0); // 130 is not > 130
      const compacted = ctx(1_000, 900); // 100 past: recently compacted
      const overAfterCompaction = ctx(1_031, 900);
      const young = ctx(1, 0);
      await insert(over, atEdge, compacted, overAfterCompaction, young);
      const sweep = store().sweep;
      const sorted = (ids: readonly string[]) => [...ids].sort();
      expect(sorted(await sweep.contextsToCompact(100, 30, 10))).toEqual(sorted([over.contextId, overAfterCompaction.contextId]));
      expect(await sweep.contextsToCompact(100, 30, 1)).toHaveLength(1);
      expect(sorted(await sweep.contextsToCompact(100, 0, 10))).toEqual(
        sorted([over.contextId, atEdge.contextId, overAfterCompaction.contextId]),
      );
      expect(await sweep.contextsToCompact(10_000, 1_000, 10)).toEqual([]);
    });

    it("finds, among given contexts only, those past retention + slack (contextsToCompactAmong)", async () => {
      const over = makeContext({ revision: 131, compactRevision: 0 });
      const atEdge = makeContext({ revision: 130, compactRevision: 0 });
      const notAsked = makeContext({ revision: 5_000, compactRevision: 0 });
      await insert(over, atEdge, notAsked);
      const sweep = store().sweep;
      const gone = "00000000-0000-4000-8000-000000000001";
      expect(await sweep.contextsToCompactAmong([over.contextId, atEdge.contextId, gone], 100, 30)).toEqual([over.contextId]);
      expect((await sweep.contextsToCompactAmong([over.contextId, atEdge.contextId], 100, 0)).sort()).toEqual([over.contextId, atEdge.contextId].sort());
      expect(await sweep.contextsToCompactAmong([], 100, 0)).toEqual([]);
    });

    it("looks at a slice of contexts per pass, going on where the last pass stopped and around again", async () => {
      // Far past every other context of this file: only these are due.
      const due = Array.from({ length: 5 }, () => makeContext({ revision: 2_000_000, compactRevision: 0 }));
      await insert(...due, makeContext({ revision: 1_000_000, compactRevision: 0 }));
      const sweep = new PgSweepCandidates(under.database().db, under.database().sql, 2);
      const seen: string[] = [];
      let passes = 0;
      while (new Set(seen).size < due.length && passes < 1_000) {
        const found = await sweep.contextsToCompact(1_500_000, 0, 10);
        // A pass looks at two contexts (four when it runs off the end and goes on from the start).
        expect(found.length).toBeLessThanOrEqual(4);
        seen.push(...found);
        passes += 1;
      }
      expect(new Set(seen)).toEqual(new Set(due.map((c) => c.contextId)));
      // Many passes: no pass looked at them all (this file has more contexts than a slice).
      expect(passes).toBeGreaterThan(1);
      // Every one is found again on the next cycle, and a pass never takes more than its limit.
      const again = new Set<string>();
      for (let i = 0; i < passes * 2 + 4 && again.size < due.length; i++) {
        const found = await sweep.contextsToCompact(1_500_000, 0, 1);
        expect(found.length).toBeLessThanOrEqual(1);
        found.forEach((id) => again.add(id));
      }
      expect(again.size).toBe(due.length);
    });
  });

  describe("purgeDeletedContextEvents", () => {
    /** A context with events at occurred_at = at(rev * 1000 + seq) (and `more`), deleted at revision `revision` + 1. */
    const deletedWithHistory = async (revision: number, more: (id: string) => readonly ContextEvent[] = () => []) => {
      const context = await withHistory(revision, [], more);
      const gone: Context = { ...withoutState(context), revision: revision + 1 };
      const deleted = { ...event(context.contextId, revision + 1, 0, gone), type: "CONTEXT_DELETED" as const };
      applied(await store().apply({}, deletion(withoutState(context), [deleted])));
      return context;
    };

    it("deletes old events of deleted contexts only, the CONTEXT_DELETED event last", async () => {
      const live = await withHistory(5, []);
      const deleted = await deletedWithHistory(5); // 7 events, the last (CONTEXT_DELETED) at at(6000)
      const sweep = store().sweep;

      // Before the deletion is old enough nothing goes; the live context's old events never do.
      expect(await sweep.purgeDeletedContextEvents(at(6_000), 100)).toBe(0);
      expect(await eventRevisions(deleted.contextId)).toHaveLength(7);

      expect(await sweep.purgeDeletedContextEvents(at(100_000), 100)).toBe(7);
      expect(await eventRevisions(deleted.contextId)).toEqual([]);
      expect(await eventRevisions(live.contextId)).toHaveLength(6);
      expect(await sweep.purgeDeletedContextEvents(at(100_000), 100)).toBe(0);
    });

    it("respects the limit, and later passes finish the job", async () => {
      const first = await deletedWithHistory(5); // 7 events each
      const second = await deletedWithHistory(3); // 5 events
      const sweep = store().sweep;
      const remaining = async () => (await eventRevisions(first.contextId)).length + (await eventRevisions(second.contextId)).length;

      expect(await sweep.purgeDeletedContextEvents(at(100_000), 4)).toBe(4);
      expect(await remaining()).toBe(8);
      // Whatever stopped part-way is still findable: its CONTEXT_DELETED event went last.
      let passes = 0;
      while ((await sweep.purgeDeletedContextEvents(at(100_000), 3)) > 0) passes++;
      expect(passes).toBeGreaterThanOrEqual(3);
      expect(await remaining()).toBe(0);
    });

    it("keeps a deleted context's events written at or after olderThan", async () => {
      // A straggler stamped later than the deletion (another instance's clock running ahead).
      const deleted = await deletedWithHistory(3, (id) => [{ ...stateEvent(id, 9, 0), occurredAt: at(50_000) }]);
      const sweep = store().sweep;
      expect(await sweep.purgeDeletedContextEvents(at(10_000), 100)).toBe(4);
      // The straggler is still there, so the CONTEXT_DELETED event stays to find it by.
      expect(await eventRevisions(deleted.contextId)).toEqual([4, 9]);
      expect(await sweep.purgeDeletedContextEvents(at(50_001), 100)).toBe(2);
      expect(await eventRevisions(deleted.contextId)).toEqual([]);
    });

    it("does nothing with a limit of 0", async () => {
      await deletedWithHistory(2);
      expect(await store().sweep.purgeDeletedContextEvents(at(100_000), 0)).toBe(0);
    });
  });
});
