/**
 * Row-lock behaviour between connections: only real Postgres has more than one (PGlite runs its
 * transactions one after another), so this file runs on Postgres alone. Each test waits for the
 * other session to be blocked on its lock (pg_stat_activity), never for a time.
 */
import postgres from "postgres";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { Participant } from "../../src/domain/participant.js";
import type { ApplyOutcome, BaseQuery, ContextTx, RequestKey } from "../../src/service/ports.js";
import { PgContextStore } from "../../src/store/context-store.js";
import { RENEW_LEASE, renewLeaseParams } from "../../src/store/participant-sql.js";
import { at, event, makeContext, withoutState } from "../support/context-fixtures.js";
import { openTestPostgres, postgresAvailable, resetDatabase, type TestPostgres } from "../support/databases.js";
import { signal, untilWaitingOnLocks } from "../support/lock-waits.js";
import { lapsed, makeParticipant } from "../support/participant-fixtures.js";
import { applied, creation, current, join, revision, seed } from "../support/store-seeding.js";

const postgresUp = await postgresAvailable();

describe.skipIf(!postgresUp)("PgContextStore row locks (Postgres)", () => {
  let handle: TestPostgres | undefined;
  beforeAll(async () => {
    handle = await openTestPostgres({ poolMax: 6 });
  });
  afterAll(async () => {
    await handle?.drop();
  });
  beforeEach(async () => {
    if (handle) await resetDatabase(handle.database);
  });

  const opened = () => {
    if (handle === undefined) throw new Error("the test database is not open");
    return handle;
  };
  const store = () => new PgContextStore(opened().database);
  const blocked = (count = 1) => untilWaitingOnLocks(opened().database, count);
  const query = (contextId: string): BaseQuery => ({ contextId, withState: false, agents: [] });
  const contextWith = async (member: (contextId: string) => Participant) => {
    const context = makeContext();
    await seed(store(), context);
    const participant = member(context.contextId);
    await join(store(), participant);
    return { context: await current(store(), context.contextId), participant };
  };

  /** Runs `before` in a transaction on another connection and holds it open until `release()`; then runs `after`. */
  async function holding<T>(before: (tx: ContextTx) => Promise<T>, after: (tx: ContextTx, held: T) => Promise<unknown> = async () => undefined) {
    const released = signal();
    const ready = signal();
    const done = store().transaction({}, async (tx) => {
      const held = await before(tx);
      ready.fire();
      await released.promise;
      return after(tx, held);
    });
    await Promise.race([ready.promise, done]);
    return {
      release: async () => {
        released.fire();
        return done;
      },
    };
  }

  /** A transaction on a connection of its own (not the store's), held open until `release()`. */
  async function rawHolding(work: (sql: postgres.TransactionSql) => Promise<unknown>) {
    const sql = postgres(opened().url, { max: 1, onnotice: () => {} });
    const released = signal();
    const ready = signal();
    const done = sql.begin(async (t) => {
      await work(t);
      ready.fire();
      await released.promise;
    });
    await Promise.race([ready.promise, done]);
    return {
      release: async () => {
        released.fire();
        try {
          await done;
        } finally {
          await sql.end({ timeout: 1 });
        }
      },
    };
  }

  it("skips a context another transaction holds with skipLocked, and waits for it without", async () => {
    const context = makeContext();
    await seed(store(), context);
    const holder = await holding((tx) => tx.lockBase(query(context.contextId)));
    let waited: Promise<unknown> | undefined;
    try {
      expect(await store().transaction({}, (tx) => tx.lockBase({ ...query(context.contextId), skipLocked: true }))).toEqual({ base: null, prior: null });
      let settled = false;
      waited = store()
        .transaction({}, (tx) => tx.lockBase(query(context.contextId)))
        .finally(() => (settled = true));
      await blocked();
      expect(settled).toBe(false);
    } finally {
      await holder.release();
    }
    expect(await waited).toEqual({ base: expect.objectContaining({ context: withoutState(context) }), prior: null });
    const free = await store().transaction({}, (tx) => tx.lockBase({ ...query(context.contextId), skipLocked: true }));
    expect(free.base?.context).toEqual(withoutState(context));
  });

  it("makes an apply decided on a base a locked writer then changed wait for it, and write nothing", async () => {
    const context = makeContext();
    await seed(store(), context);
    const base = await store().loadBase({}, query(context.contextId));
    const holder = await holding(
      (tx) => tx.lockBase(query(context.contextId)),
      async (tx, locked) =>
        tx.finish(revision(locked.base!.context, { name: "locked" }, { events: [event(context.contextId, 2, 0, withoutState(context))] })),
    );
    const stale = store().apply({}, revision(base!.context, { name: "cas" }, { events: [event(context.contextId, 2, 1, withoutState(context))] }));
    await blocked();
    applied((await holder.release()) as ApplyOutcome);
    // Under READ COMMITTED the waiting UPDATE re-checks its WHERE (revision = base) on the new row.
    expect(await stale).toEqual({ applied: false, reason: "revision" });
    expect(await current(store(), context.contextId)).toMatchObject({ name: "locked", revision: 2 });
    const events = await store().listEvents({}, context.contextId, { revision: 0, seq: 0 }, 10);
    expect(events.map((e) => [e.revision, e.seq])).toEqual([[2, 0]]);
  });

  it("applies exactly one of two changes decided on the same base", async () => {
    const context = makeContext();
    await seed(store(), context);
    const base = withoutState(context);
    // Both wait behind a lock holder, so they reach the row together once it lets go.
    const holder = await holding((tx) => tx.lockBase(query(context.contextId)));
    const first = store().apply({}, revision(base, { name: "first" }, { events: [event(context.contextId, 2, 0, base)] }));
    const second = store().apply({}, revision(base, { name: "second" }, { events: [event(context.contextId, 2, 0, base)] }));
    await blocked(2);
    await holder.release();
    const outcomes = await Promise.all([first, second]);
    expect(outcomes.filter((o) => o.applied)).toHaveLength(1);
    expect(outcomes.filter((o) => !o.applied)).toEqual([{ applied: false, reason: "revision" }]);
    const winner = outcomes[0]!.applied ? "first" : "second";
    expect(await current(store(), context.contextId)).toMatchObject({ name: winner, revision: 2 });
  });

  it("re-checks a lease renewed while the sweeper waited for its row", async () => {
    const { context, participant: p } = await contextWith((id) => makeParticipant(id, { leaseExpiresAt: at(1_000) }));
    // A renewal (Heartbeat's statement) holds the participant row in a transaction still open.
    const renewer = await rawHolding((t) =>
      t.unsafe(RENEW_LEASE, renewLeaseParams({ contextId: context.contextId, participantId: p.participantId, now: at(30_000), leaseExpiresAt: at(60_000) }) as never[]),
    );
    const sweep = store().transaction({}, async (tx) => {
      expect((await tx.lockBase(query(context.contextId), undefined)).base).not.toBeNull();
      return tx.lapsedParticipants(context.contextId, at(2_000), 10);
    });
    await blocked();
    await renewer.release();
    // Under READ COMMITTED the locked row's WHERE is evaluated again on its new version.
    expect(await sweep).toEqual([]);
  });

  it("makes a renewal wait for a sweeper holding the row, then refuses it once INACTIVE", async () => {
    const { context, participant: p } = await contextWith((id) => makeParticipant(id, { leaseExpiresAt: at(1_000) }));
    const sweeper = await holding(
      async (tx) => {
        const { base } = await tx.lockBase(query(context.contextId));
        const [due] = await tx.lapsedParticipants(context.contextId, at(2_000), 10);
        expect(due).toEqual(p);
        return base!;
      },
      (tx, base) => tx.finish(revision(base.context, {}, { updated: [lapsed(p)] })),
    );
    const renewal = store().renewLease({}, {
      contextId: context.contextId,
      participantId: p.participantId,
      agentId: p.agentId,
      now: at(3_000),
      leaseExpiresAt: at(33_000),
    });
    await blocked();
    applied((await sweeper.release()) as ApplyOutcome);
    expect(await renewal).toBeNull();
    expect(await store().getParticipant({}, context.contextId, p.participantId)).toEqual(lapsed(p));
  });

  describe("a request key taken by a call committed after the statement began", () => {
    const key: RequestKey = { principal: "alice", requestId: "concurrent", method: "UpdateContext" };
    /** Another call's claim of `key`, uncommitted until release(). */
    const claimed = () =>
      rawHolding((t) =>
        t.unsafe(
          "insert into request_keys (principal, request_id, method, result, created_at) values ($1, $2, $3, $4::text::jsonb, now())",
          [key.principal, key.requestId, key.method, JSON.stringify({ first: true })],
        ),
      );

    it("aborts the single statement: nothing applies, and the caller is told to read the key", async () => {
      const context = makeContext();
      await seed(store(), context);
      const other = await claimed();
      const change = { ...revision(withoutState(context), { name: "twice" }, { events: [event(context.contextId, 2, 0, withoutState(context))] }), request: { key, result: { second: true } } };
      const outcome = store().apply({}, change);
      await blocked();
      await other.release();
      expect(await outcome).toEqual({ applied: false, reason: "request", prior: null });
      expect(await current(store(), context.contextId)).toEqual(withoutState(context));
      expect(await store().listEvents({}, context.contextId, { revision: 0, seq: 0 }, 10)).toEqual([]);
      expect(await store().storedResult({}, key)).toEqual({ method: key.method, result: { first: true } });
    });

    it("aborts applyAll whole: none of its changes applies", async () => {
      const [plain, keyed] = [makeContext(), makeContext()];
      await seed(store(), plain, keyed);
      const other = await claimed();
      const outcomes = store().applyAll({}, [
        revision(withoutState(plain), { name: "plain" }),
        { ...revision(withoutState(keyed), { name: "keyed" }), request: { key, result: 2 } },
      ]);
      await blocked();
      await other.release();
      expect(await outcomes).toEqual([
        { applied: false, reason: "request", prior: null },
        { applied: false, reason: "request", prior: null },
      ]);
      expect(await current(store(), plain.contextId)).toEqual(withoutState(plain));
      expect(await current(store(), keyed.contextId)).toEqual(withoutState(keyed));
    });
  });

  it("creates the same context once when two creates race", async () => {
    const context = makeContext();
    const outcomes = await Promise.allSettled([store().apply({}, creation(context)), store().apply({}, creation(context))]);
    expect(outcomes.filter((o) => o.status === "fulfilled" && o.value.applied)).toHaveLength(1);
    expect(await current(store(), context.contextId)).toEqual(withoutState(context));
  });
});
