import { describe, expect, it } from "vitest";
import type { ContextConfiguration } from "../../src/domain/context.js";
import { PgContextStore } from "../../src/store/context-store.js";
import { contexts } from "../../src/store/schema.js";
import { at, makeContext, type NewContext } from "../support/context-fixtures.js";
import { describeOnStores } from "../support/databases.js";
import { lapsed, makeParticipant } from "../support/participant-fixtures.js";
import { applied, current, join as joinVia, revision, seed } from "../support/store-seeding.js";
import { Sweeper } from "../../src/service/sweeper.js";
import { silentLogger } from "../../src/logger.js";
import type { Participant } from "../../src/domain/participant.js";

await describeOnStores("PgContextStore sweep candidates", (under) => {
  const store = () => new PgContextStore(under.database());
  const insert = (...all: NewContext[]) => seed(store(), ...all);
  const join = (...all: Participant[]) => joinVia(store(), ...all);
  const sorted = (ids: readonly string[]) => [...ids].sort();

  describe("presence", () => {
    it("finds each context with a lapsed ACTIVE lease once, up to the limit", async () => {
      const [two, one, none, inactiveOnly] = [makeContext(), makeContext(), makeContext(), makeContext()];
      await insert(two!, one!, none!, inactiveOnly!);
      await join(
        makeParticipant(two!.contextId, { leaseExpiresAt: at(1_000) }),
        makeParticipant(two!.contextId, { leaseExpiresAt: at(2_000) }),
        makeParticipant(one!.contextId, { leaseExpiresAt: at(2_000) }),
        makeParticipant(none!.contextId, { leaseExpiresAt: at(2_001) }),
        lapsed(makeParticipant(inactiveOnly!.contextId, { leaseExpiresAt: at(0) })),
      );
      const sweep = store().sweep;
      expect(sorted(await sweep.contextsWithLapsedLeases(at(2_000), 10))).toEqual(sorted([two!.contextId, one!.contextId]));
      expect(await sweep.contextsWithLapsedLeases(at(1_000), 10)).toEqual([two!.contextId]);
      expect(await sweep.contextsWithLapsedLeases(at(999), 10)).toEqual([]);
      expect(await sweep.contextsWithLapsedLeases(at(2_000), 1)).toHaveLength(1);
    });

    it("finds each context with an INACTIVE participant past the cutoff once", async () => {
      const [two, one, activeOnly] = [makeContext(), makeContext(), makeContext()];
      await insert(two!, one!, activeOnly!);
      await join(
        lapsed(makeParticipant(two!.contextId, { leaseExpiresAt: at(1_000) })),
        lapsed(makeParticipant(two!.contextId, { leaseExpiresAt: at(1_500) })),
        lapsed(makeParticipant(one!.contextId, { leaseExpiresAt: at(3_000) })),
        makeParticipant(activeOnly!.contextId, { leaseExpiresAt: at(0) }),
      );
      const sweep = store().sweep;
      expect(await sweep.contextsWithExpiredParticipants(at(2_000), 10)).toEqual([two!.contextId]);
      expect(sorted(await sweep.contextsWithExpiredParticipants(at(3_000), 10))).toEqual(sorted([two!.contextId, one!.contextId]));
      expect(await sweep.contextsWithExpiredParticipants(at(3_000), 1)).toHaveLength(1);
      expect(await sweep.contextsWithExpiredParticipants(at(999), 10)).toEqual([]);
    });
  });

  describe("contexts", () => {
    it("finds live contexts past expires_at, never TERMINATED ones or those that never expire", async () => {
      const due = makeContext({ expiresAt: at(1_000) });
      const paused = makeContext({ status: "PAUSED", expiresAt: at(2_000) });
      const later = makeContext({ expiresAt: at(2_001) });
      const never = makeContext({ expiresAt: null, configuration: { ...makeContext().configuration, timeoutMs: 0 } });
      const terminated = makeContext({ status: "TERMINATED", expiresAt: at(0), terminatedAt: at(0) });
      await insert(due, paused, later, never, terminated);
      const sweep = store().sweep;
      expect(sorted(await sweep.expiredContexts(at(2_000), 10))).toEqual(sorted([due.contextId, paused.contextId]));
      expect(await sweep.expiredContexts(at(1_000), 10)).toEqual([due.contextId]);
      expect(await sweep.expiredContexts(at(2_000), 1)).toHaveLength(1);
      expect(await sweep.expiredContexts(at(999), 10)).toEqual([]);
    });

    it("moves a context's sweep only when a revision takes its expiry a tenth of the timeout past it", async () => {
      // Timeout 3,600 s (a tenth: 360 s); created at 0, so the sweep and the expiry start at 3,600 s.
      const created = makeContext();
      await insert(created);
      const step = async (lastActivityMs: number) => {
        const stored = await current(store(), created.contextId);
        applied(await store().apply({}, revision(stored, { lastActivityAt: at(lastActivityMs), expiresAt: at(lastActivityMs + 3_600_000) })));
      };
      const due = (ms: number) => store().sweep.expiredContexts(at(ms), 10);
      await step(359_999); // expiry 3,959,999: under a tenth past the sweep, which stays
      expect(await due(3_599_999)).toEqual([]);
      expect(await due(3_600_000)).toEqual([created.contextId]);
      await step(360_000); // a tenth past: the sweep becomes the expiry
      expect(await due(3_959_999)).toEqual([]);
      expect(await due(3_960_000)).toEqual([created.contextId]);
    });

    it("a sweep that comes before the expiry keeps the context and re-arms the sweep at its expiry", async () => {
      const created = makeContext();
      await insert(created);
      const stored = await current(store(), created.contextId);
      applied(await store().apply({}, revision(stored, { lastActivityAt: at(100_000), expiresAt: at(3_700_000) })));
      const clock = { now: () => at(3_650_000) };
      const presence = { ttlMs: 30_000, activityTimeoutMs: 1_800_000 };
      const sweeper = new Sweeper(store(), clock, presence, { intervalMs: 1_000, batchSize: 10, retentionRevisions: 10_000 }, silentLogger());
      expect((await sweeper.sweepOnce()).terminated).toBe(0);
      const kept = await current(store(), created.contextId);
      expect(kept).toMatchObject({ status: "ACTIVE", revision: 2, expiresAt: at(3_700_000), lastActivityAt: at(100_000) });
      expect(await store().sweep.expiredContexts(at(3_699_999), 10)).toEqual([]);
      expect(await store().sweep.expiredContexts(at(3_700_000), 10)).toEqual([created.contextId]);
    });

    it("finds TERMINATED contexts with auto-cleanup once their own delay has run out", async () => {
      const config = (patch: Partial<ContextConfiguration>): ContextConfiguration => ({ ...makeContext().configuration, ...patch });
      const terminated = (terminatedAt: Date | null, patch: Partial<ContextConfiguration>) =>
        makeContext({ status: "TERMINATED", terminatedAt, configuration: config(patch) });
      const short = terminated(at(0), { autoCleanup: true, cleanupDelayMs: 1_000 });
      const immediate = terminated(at(1_500), { autoCleanup: true, cleanupDelayMs: 0 });
      const long = terminated(at(0), { autoCleanup: true, cleanupDelayMs: 300_000 });
      const kept = terminated(at(0), { autoCleanup: false, cleanupDelayMs: 0 });
      const unstamped = terminated(null, { autoCleanup: true, cleanupDelayMs: 0 });
      const live = makeContext({ configuration: config({ autoCleanup: true, cleanupDelayMs: 0 }) });
      await insert(short, immediate, long, kept, unstamped, live);
      const sweep = store().sweep;
      expect(await sweep.contextsDueForCleanup(at(999), 10)).toEqual([]);
      expect(await sweep.contextsDueForCleanup(at(1_000), 10)).toEqual([short.contextId]);
      expect(sorted(await sweep.contextsDueForCleanup(at(2_000), 10))).toEqual(sorted([short.contextId, immediate.contextId]));
      expect(await sweep.contextsDueForCleanup(at(2_000), 1)).toHaveLength(1);
      expect(sorted(await sweep.contextsDueForCleanup(at(300_000), 10))).toEqual(
        sorted([short.contextId, immediate.contextId, long.contextId]),
      );
    });

    it("ignores a configuration without the cleanup keys rather than failing", async () => {
      const old = makeContext({ status: "TERMINATED", terminatedAt: at(0) });
      await insert(old);
      const { autoCleanup: _a, cleanupDelayMs: _d, ...partial } = old.configuration;
      await under.database().db.update(contexts).set({ configuration: partial as ContextConfiguration });
      expect(await store().sweep.contextsDueForCleanup(at(10_000_000), 10)).toEqual([]);
    });
  });
});
