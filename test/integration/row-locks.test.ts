/**
 * Row-lock behaviour between connections: only real Postgres has more than one (PGlite runs its
 * transactions one after another), so this file runs on Postgres alone.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { Participant } from "../../src/domain/participant.js";
import { PgContextStore } from "../../src/store/context-store.js";
import { makeContext, withoutState, at, type NewContext } from "../support/context-fixtures.js";
import { openTestPostgres, postgresAvailable, resetDatabase, type TestPostgres } from "../support/databases.js";
import { lapsed, makeParticipant } from "../support/participant-fixtures.js";

const postgresUp = await postgresAvailable();

describe.skipIf(!postgresUp)("PgContextStore row locks (Postgres)", () => {
  let handle: TestPostgres | undefined;
  beforeAll(async () => {
    handle = await openTestPostgres();
  });
  afterAll(async () => {
    await handle?.drop();
  });
  beforeEach(async () => {
    if (handle) await resetDatabase(handle.database);
  });

  const store = () => {
    if (handle === undefined) throw new Error("the test database is not open");
    return new PgContextStore(handle.database);
  };
  const insert = (...all: NewContext[]) =>
    store().transaction({}, async (tx) => {
      for (const c of all) await tx.insertContext(c);
    });
  const contextWith = async (member: (contextId: string) => Participant) => {
    const context = makeContext();
    await insert(context);
    const participant = member(context.contextId);
    await store().transaction({}, (tx) => tx.insertParticipants([participant]));
    return { context, participants: [participant] };
  };
  const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  /** Holds `work`'s locks in a transaction on another connection until `release()` is called. */
  async function holding(work: (tx: Parameters<Parameters<PgContextStore["transaction"]>[1]>[0]) => Promise<unknown>) {
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let ready!: () => void;
    const isReady = new Promise<void>((resolve) => (ready = resolve));
    const done = store().transaction({}, async (tx) => {
      await work(tx);
      ready();
      await released;
    });
    await Promise.race([isReady, done]);
    return {
      release: async () => {
        release();
        await done;
      },
    };
  }

  it("skips a context another transaction holds with skipLocked, and waits for it without", async () => {
    const context = makeContext();
    await insert(context);
    const holder = await holding((tx) => tx.lockContext(context.contextId));
    let waited: Promise<unknown> | undefined;
    try {
      expect(await store().transaction({}, (tx) => tx.lockContext(context.contextId, { skipLocked: true }))).toBeNull();
      let settled = false;
      waited = store()
        .transaction({}, (tx) => tx.lockContext(context.contextId))
        .finally(() => (settled = true));
      await pause(200);
      expect(settled).toBe(false);
    } finally {
      await holder.release();
    }
    expect(await waited).toEqual(withoutState(context));
    expect(await store().transaction({}, (tx) => tx.lockContext(context.contextId, { skipLocked: true }))).toEqual(withoutState(context));
  });

  it("re-checks a lease renewed while the sweeper waited for its row", async () => {
    const { context, participants } = await contextWith((id) => makeParticipant(id, { leaseExpiresAt: at(1_000) }));
    const [p] = participants as [Participant];
    // A writer renews the lease inside a transaction it keeps open for a while.
    const renewer = await holding((tx) => tx.updateParticipant({ ...p, leaseExpiresAt: at(60_000), lastActivityAt: at(30_000) }));
    const sweep = store().transaction({}, async (tx) => {
      await tx.lockContext(context.contextId);
      return tx.lapsedParticipants(context.contextId, at(2_000), 10);
    });
    await pause(200);
    await renewer.release();
    // Under READ COMMITTED the locked row's WHERE is evaluated again on its new version.
    expect(await sweep).toEqual([]);
  });

  it("makes a renewal wait for a sweeper holding the row, then refuses it once INACTIVE", async () => {
    const { context, participants } = await contextWith((id) => makeParticipant(id, { leaseExpiresAt: at(1_000) }));
    const [p] = participants as [Participant];
    const sweeper = await holding(async (tx) => {
      await tx.lockContext(context.contextId);
      const [due] = await tx.lapsedParticipants(context.contextId, at(2_000), 10);
      expect(due).toEqual(p);
      await tx.updateParticipant(lapsed(p));
    });
    const renewal = store().renewLease({}, {
      contextId: context.contextId,
      participantId: p.participantId,
      agentId: p.agentId,
      now: at(3_000),
      leaseExpiresAt: at(33_000),
    });
    await pause(200);
    await sweeper.release();
    expect(await renewal).toBeNull();
    expect(await store().getParticipant({}, context.contextId, p.participantId)).toEqual(lapsed(p));
  });
});
