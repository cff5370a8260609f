import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { Participant } from "../../src/domain/participant.js";
import type { BaseQuery } from "../../src/service/ports.js";
import { memberIn, participantIn } from "../../src/service/write-base.js";
import { PgContextStore } from "../../src/store/context-store.js";
import { COMPLETE_UP_TO } from "../../src/store/base-sql.js";
import { caught, expectClientSafe, sqlStateOf } from "../support/app-error-assertions.js";
import { at, BASE, makeContext, type NewContext } from "../support/context-fixtures.js";
import { describeOnStores } from "../support/databases.js";
import { lapsed, makeParticipant } from "../support/participant-fixtures.js";
import { applied, creation, current, join as joinVia, remove, revision, seed } from "../support/store-seeding.js";

await describeOnStores("PgContextStore participants", (under) => {
  const store = () => new PgContextStore(under.database());
  const insert = (...all: NewContext[]) => seed(store(), ...all);
  const join = (...all: Participant[]) => joinVia(store(), ...all);
  const query = (contextId: string, more: Partial<BaseQuery> = {}): BaseQuery => ({ contextId, withState: false, agents: [], ...more });
  /** Applies a revision of the context carrying these participant rows. */
  const change = async (contextId: string, rows: { inserted?: Participant[]; updated?: Participant[]; deleted?: string[] }) =>
    store().apply({}, revision(await current(store(), contextId), {}, rows));
  /** A context with `members` inserted in it. */
  const contextWith = async (...members: ((contextId: string) => Participant)[]) => {
    const context = makeContext();
    await insert(context);
    const participants = members.map((m) => m(context.contextId));
    await join(...participants);
    return { context, participants };
  };

  describe("insert, read, update, delete", () => {
    it("round-trips every field, dates exact to the millisecond", async () => {
      const { context, participants } = await contextWith(
        (id) => makeParticipant(id, { joinedAt: at(1), lastActivityAt: at(2), leaseExpiresAt: at(30_003) }),
        (id) => lapsed(makeParticipant(id, { participantType: "HUMAN", roles: [], capabilities: [], metadata: {} })),
      );
      const [p, q] = participants as [Participant, Participant];

      expect(await store().getParticipant({}, context.contextId, p.participantId)).toEqual(p);
      expect(await store().getParticipant({}, context.contextId, q.participantId)).toEqual(q);
      expect((await store().getParticipant({}, context.contextId, p.participantId))?.leaseExpiresAt.getTime()).toBe(BASE + 30_003);
      expect(await store().findMember({}, context.contextId, p.agentId)).toEqual(p);
      expect(await store().findMember({ deadline: Date.now() + 10_000 }, context.contextId, q.agentId)).toEqual(q);
      // A base reads them the same way, unlocked and locked.
      const base = await store().loadBase({}, query(context.contextId));
      expect(base?.participants).toEqual(new Map([[p.participantId, p], [q.participantId, q]]));
      const locked = await store().transaction({}, (tx) => tx.lockBase(query(context.contextId)));
      expect(locked.base?.participants).toEqual(base?.participants);
    });

    it("returns null for a participant that is absent or belongs to another context", async () => {
      const { context, participants } = await contextWith((id) => makeParticipant(id));
      const [p] = participants as [Participant];
      const other = makeContext();
      await insert(other);
      expect(await store().getParticipant({}, other.contextId, p.participantId)).toBeNull();
      expect(await store().getParticipant({}, context.contextId, randomUUID())).toBeNull();
      expect(await store().findMember({}, other.contextId, p.agentId)).toBeNull();
      expect(await store().findMember({}, context.contextId, "nobody")).toBeNull();
      const base = (await store().loadBase({}, query(other.contextId, { agents: [p.agentId], participantId: p.participantId })))!;
      expect(participantIn(base, p.participantId)).toBeNull();
      expect(memberIn(base, p.agentId)).toBeNull();
    });

    it("refuses a second membership of one agent with PARTICIPANT_ALREADY_EXISTS, writing nothing; another context is fine", async () => {
      const { context, participants } = await contextWith((id) => makeParticipant(id, { agentId: "agent-a" }));
      const before = await current(store(), context.contextId);
      const again = await caught(join(makeParticipant(context.contextId, { agentId: "agent-a" })));
      expect(again.reason).toBe("PARTICIPANT_ALREADY_EXISTS");
      expect(sqlStateOf(again.cause)).toBe("23505");
      expectClientSafe(again);

      // A batch with one clash adds nobody.
      const fresh = makeParticipant(context.contextId, { agentId: "agent-b" });
      const batch = await caught(join(fresh, makeParticipant(context.contextId, { agentId: "agent-a" })));
      expect(batch.reason).toBe("PARTICIPANT_ALREADY_EXISTS");
      expect(await store().findMember({}, context.contextId, "agent-b")).toBeNull();
      // Two of the same agent inside one batch clash too.
      const twins = await caught(join(makeParticipant(context.contextId, { agentId: "agent-c" }), makeParticipant(context.contextId, { agentId: "agent-c" })));
      expect(twins.reason).toBe("PARTICIPANT_ALREADY_EXISTS");
      // The whole change failed: the context did not move to a new revision either.
      expect(await current(store(), context.contextId)).toEqual(before);

      const other = makeContext();
      await insert(other);
      const elsewhere = makeParticipant(other.contextId, { agentId: "agent-a" });
      await join(elsewhere);
      expect(await store().findMember({}, other.contextId, "agent-a")).toEqual(elsewhere);
      expect(await store().findMember({}, context.contextId, "agent-a")).toEqual(participants[0]);
    });

    it("updates every column but participant_id, context_id, agent_id and joined_at; activity and lease never move back", async () => {
      const { context, participants } = await contextWith((id) => makeParticipant(id));
      const [p] = participants as [Participant];
      const changed: Participant = {
        ...p,
        agentId: "someone-else", // ignored
        joinedAt: at(999_999), // ignored
        participantType: "SERVICE",
        displayName: "",
        status: "INACTIVE",
        roles: ["admin"],
        capabilities: [],
        metadata: { replaced: true },
        lastActivityAt: at(7_001),
        leaseExpiresAt: at(7_002), // earlier than p's lease (at 30 s): kept
        inactiveSince: at(7_002),
      };
      const stored: Participant = { ...changed, agentId: p.agentId, joinedAt: p.joinedAt, leaseExpiresAt: p.leaseExpiresAt };
      const outcome = applied(await change(context.contextId, { updated: [changed] }));
      // The outcome has the rows as stored.
      expect(outcome.updated).toEqual([stored]);
      expect(await store().getParticipant({}, context.contextId, p.participantId)).toEqual(stored);

      // Later activity and lease are written.
      const later = { ...stored, lastActivityAt: at(40_000), leaseExpiresAt: at(70_000) };
      expect(applied(await change(context.contextId, { updated: [later] })).updated).toEqual([later]);

      // A participant that does not exist, or is another context's, is not updated (and not reported).
      const other = makeContext();
      await insert(other);
      const outsider = makeParticipant(other.contextId);
      await join(outsider);
      const ghost = applied(await change(context.contextId, { updated: [{ ...p, participantId: randomUUID() }, { ...outsider, displayName: "moved" }] }));
      expect(ghost.updated).toEqual([]);
      expect(await store().getParticipant({}, other.contextId, outsider.participantId)).toEqual(outsider);
    });

    it("deletes only the named participants of the context, and all of them with their context", async () => {
      const { context, participants } = await contextWith(
        (id) => makeParticipant(id),
        (id) => makeParticipant(id),
        (id) => makeParticipant(id),
      );
      const [a, b, c] = participants as [Participant, Participant, Participant];
      const other = makeContext();
      await insert(other);
      const outsider = makeParticipant(other.contextId);
      await join(outsider);

      applied(await change(context.contextId, { deleted: [a.participantId, b.participantId, outsider.participantId] }));
      applied(await change(context.contextId, { deleted: [] }));
      const left = await store().listParticipants({}, { contextId: context.contextId, filter: {}, limit: 10 });
      expect(left.participants).toEqual([c]);
      expect(await store().getParticipant({}, other.contextId, outsider.participantId)).toEqual(outsider);

      // ON DELETE CASCADE: the membership goes with its context (and frees the agent's key).
      await remove(store(), context.contextId);
      expect(await store().getParticipant({}, context.contextId, c.participantId)).toBeNull();
      expect(await store().findMember({}, context.contextId, c.agentId)).toBeNull();
      expect((await store().listParticipants({}, { contextId: context.contextId, filter: {}, limit: 10 })).totalSize).toBe(0);
      expect(await store().getParticipant({}, other.contextId, outsider.participantId)).toEqual(outsider);
    });

    it("writes the participants a create change carries", async () => {
      const context = makeContext({ participantCount: 1 });
      const owner = makeParticipant(context.contextId, { agentId: "alice" });
      applied(await store().apply({}, { ...creation(context), inserted: [owner] }));
      expect(await store().getParticipant({}, context.contextId, owner.participantId)).toEqual(owner);
    });

    it("stores and reads back events carrying a participant", async () => {
      const { context, participants } = await contextWith((id) => lapsed(makeParticipant(id)));
      const [p] = participants as [Participant];
      // Written on the locked path this time: lockBase, then the change with its events and COMMIT.
      const base = await current(store(), context.contextId);
      await store().transaction({}, async (tx) => {
        expect((await tx.lockBase(query(context.contextId))).base?.participants.get(p.participantId)).toEqual(p);
        const joined = {
          contextId: context.contextId,
          revision: base.revision + 1,
          seq: 0,
          eventId: randomUUID(),
          type: "PARTICIPANT_JOINED" as const,
          actor: p.agentId,
          occurredAt: at(5),
          reason: "",
          payload: { kind: "participant" as const, participant: p },
        };
        applied(await tx.finish(revision(base, {}, { events: [joined] })));
      });
      const [read] = await store().listEvents({}, context.contextId, { revision: 0, seq: 0 }, 10);
      expect(read?.payload).toEqual({ kind: "participant", participant: p });
      expect(read?.payload.kind === "participant" ? read.payload.participant.inactiveSince : null).toEqual(p.leaseExpiresAt);
    });
  });

  describe("bases (loadBase, lockBase)", () => {
    it(`reads every participant of a context with at most ${COMPLETE_UP_TO}: complete`, async () => {
      const { context, participants } = await contextWith(
        (id) => makeParticipant(id, { joinedAt: at(2) }),
        (id) => makeParticipant(id, { joinedAt: at(1) }),
      );
      const [a, b] = participants as [Participant, Participant];
      const base = (await store().loadBase({}, query(context.contextId, { agents: ["nobody"] })))!;
      expect(base.complete).toBe(true);
      expect(base.cached).toBe(false);
      expect([...base.participants.keys()]).toEqual([b.participantId, a.participantId]);
      expect(base.context).toEqual(await current(store(), context.contextId));
      expect(base.context).not.toHaveProperty("sharedState");
      // Complete: an agent or participant not asked for is known not to be there.
      expect(memberIn(base, a.agentId)).toEqual(a);
      expect(memberIn(base, "someone")).toBeNull();
      expect(participantIn(base, randomUUID())).toBeNull();
      // withState adds the state.
      expect((await store().loadBase({}, query(context.contextId, { withState: true })))?.context.sharedState).toEqual(context.sharedState);
      expect(await store().loadBase({}, query(randomUUID()))).toBeNull();
    });

    it(`reads only the participants asked for in a context with more than ${COMPLETE_UP_TO}: not complete`, async () => {
      const count = COMPLETE_UP_TO + 1;
      const context = makeContext({ participantCount: count, configuration: { ...makeContext().configuration, maxParticipants: 1_000 } });
      await insert(context);
      const members = Array.from({ length: count }, (_, i) => makeParticipant(context.contextId, { agentId: `agent-${i}`, joinedAt: at(i) }));
      applied(await change(context.contextId, { inserted: members }));
      const [first, second, third] = members as [Participant, Participant, Participant];

      const asked = query(context.contextId, { agents: [first.agentId, "stranger"], participantId: second.participantId });
      for (const base of [
        (await store().loadBase({}, asked))!,
        (await store().transaction({}, (tx) => tx.lockBase(asked))).base!,
        (await store().transaction({}, (tx) => tx.lockBase({ ...asked, skipLocked: true }))).base!,
      ]) {
        expect(base.complete).toBe(false);
        expect([...base.participants.keys()]).toEqual([first.participantId, second.participantId]);
        expect(memberIn(base, first.agentId)).toEqual(first);
        // Asked for and absent: known not to be a member; not asked for: unknown.
        expect(memberIn(base, "stranger")).toBeNull();
        expect(memberIn(base, third.agentId)).toBeUndefined();
        expect(participantIn(base, second.participantId)).toEqual(second);
        expect(participantIn(base, third.participantId)).toBeUndefined();
      }
    });
  });

  describe("listParticipants", () => {
    it("pages oldest first on (joined_at, participant_id) and counts the total", async () => {
      const { context, participants } = await contextWith(
        (id) => makeParticipant(id, { joinedAt: at(3_000) }),
        (id) => makeParticipant(id, { joinedAt: at(1_000) }),
        (id) => makeParticipant(id, { joinedAt: at(2_000) }),
        (id) => makeParticipant(id, { joinedAt: at(2_000) }),
        (id) => makeParticipant(id, { joinedAt: at(2_000) }),
      );
      const other = makeContext();
      await insert(other);
      await join(makeParticipant(other.contextId, { joinedAt: at(0) }));

      const expected = [...participants]
        .sort((x, y) => x.joinedAt.getTime() - y.joinedAt.getTime() || (x.participantId < y.participantId ? -1 : 1))
        .map((p) => p.participantId);
      const seen: string[] = [];
      let after: { joinedAt: Date; participantId: string } | undefined;
      for (;;) {
        const page = await store().listParticipants({}, { contextId: context.contextId, filter: {}, limit: 2, ...(after ? { after } : {}) });
        expect(page.totalSize).toBe(5);
        seen.push(...page.participants.map((p) => p.participantId));
        const last = page.participants.at(-1);
        if (page.participants.length < 2 || last === undefined) break;
        after = { joinedAt: last.joinedAt, participantId: last.participantId };
      }
      expect(seen).toEqual(expected);
      expect(await store().listParticipants({ deadline: Date.now() + 10_000 }, { contextId: randomUUID(), filter: {}, limit: 5 })).toEqual({
        participants: [],
        totalSize: 0,
      });
    });

    it("filters by status, role, capability and participant type, the total following the filter", async () => {
      const { context, participants } = await contextWith(
        (id) => makeParticipant(id, { joinedAt: at(1), roles: ["admin"], capabilities: ["plan"], participantType: "HUMAN" }),
        (id) => lapsed(makeParticipant(id, { joinedAt: at(2), roles: ["viewer", "admin"], capabilities: ["code"] })),
        (id) => makeParticipant(id, { joinedAt: at(3), roles: ["viewer"], capabilities: ["plan", "code"], participantType: "SERVICE" }),
      );
      const [a, b, c] = participants.map((p) => p.participantId) as [string, string, string];
      const ids = async (filter: object, limit = 10) => {
        const result = await store().listParticipants({}, { contextId: context.contextId, filter, limit });
        return { ids: result.participants.map((p) => p.participantId), total: result.totalSize };
      };
      expect(await ids({ status: "ACTIVE" })).toEqual({ ids: [a, c], total: 2 });
      expect(await ids({ status: "INACTIVE" })).toEqual({ ids: [b], total: 1 });
      expect(await ids({ role: "admin" })).toEqual({ ids: [a, b], total: 2 });
      expect(await ids({ role: "admi" })).toEqual({ ids: [], total: 0 });
      expect(await ids({ capability: "code" })).toEqual({ ids: [b, c], total: 2 });
      expect(await ids({ participantType: "AGENT" })).toEqual({ ids: [b], total: 1 });
      expect(await ids({ role: "viewer", capability: "plan", status: "ACTIVE", participantType: "SERVICE" })).toEqual({ ids: [c], total: 1 });
      expect(await ids({ role: "viewer" }, 1)).toEqual({ ids: [b], total: 2 });
    });
  });

  describe("renewLease", () => {
    it("renews only the ACTIVE participant of the renewing agent, in that context", async () => {
      const { context, participants } = await contextWith(
        (id) => makeParticipant(id),
        (id) => lapsed(makeParticipant(id)),
      );
      const [active, inactive] = participants as [Participant, Participant];
      const renewal = {
        contextId: context.contextId,
        participantId: active.participantId,
        agentId: active.agentId,
        now: at(20_000),
        leaseExpiresAt: at(50_000),
      };
      const renewed = await store().renewLease({}, renewal);
      expect(renewed).toEqual({ ...active, lastActivityAt: at(20_000), leaseExpiresAt: at(50_000) });
      expect(await store().getParticipant({}, context.contextId, active.participantId)).toEqual(renewed);

      const again = await store().renewLease({ deadline: Date.now() + 10_000 }, { ...renewal, now: at(21_000), leaseExpiresAt: at(51_000) });
      expect(again?.leaseExpiresAt).toEqual(at(51_000));

      expect(await store().renewLease({}, { ...renewal, agentId: "someone-else" })).toBeNull();
      expect(await store().renewLease({}, { ...renewal, contextId: randomUUID() })).toBeNull();
      expect(await store().renewLease({}, { ...renewal, participantId: inactive.participantId, agentId: inactive.agentId })).toBeNull();
      expect(await store().renewLease({}, { ...renewal, participantId: randomUUID() })).toBeNull();
      // Nothing changed by the refused renewals.
      expect(await store().getParticipant({}, context.contextId, inactive.participantId)).toEqual(inactive);
      expect((await store().getParticipant({}, context.contextId, active.participantId))?.leaseExpiresAt).toEqual(at(51_000));
    });
  });

  describe("presence in a transaction", () => {
    it("selects lapsed ACTIVE leases, oldest first, up to the limit and at the boundary", async () => {
      const { context, participants } = await contextWith(
        (id) => makeParticipant(id, { leaseExpiresAt: at(10_000) }),
        (id) => makeParticipant(id, { leaseExpiresAt: at(5_000) }),
        (id) => makeParticipant(id, { leaseExpiresAt: at(10_001) }),
        (id) => lapsed(makeParticipant(id, { leaseExpiresAt: at(1_000) })),
      );
      const [due, older, later] = participants as [Participant, Participant, Participant];
      const other = makeContext();
      await insert(other);
      await join(makeParticipant(other.contextId, { leaseExpiresAt: at(0) }));

      await store().transaction({}, async (tx) => {
        expect((await tx.lockBase(query(context.contextId))).base).not.toBeNull();
        expect(await tx.lapsedParticipants(context.contextId, at(10_000), 10)).toEqual([older, due]);
        expect(await tx.lapsedParticipants(context.contextId, at(10_000), 1)).toEqual([older]);
        expect(await tx.lapsedParticipants(context.contextId, at(4_999), 10)).toEqual([]);
        expect(await tx.lapsedParticipants(context.contextId, at(10_001), 10)).toEqual([older, due, later]);
      });
    });

    it("selects INACTIVE participants past the cutoff, longest inactive first", async () => {
      const { context, participants } = await contextWith(
        (id) => lapsed(makeParticipant(id, { leaseExpiresAt: at(2_000) })),
        (id) => lapsed(makeParticipant(id, { leaseExpiresAt: at(1_000) })),
        (id) => lapsed(makeParticipant(id, { leaseExpiresAt: at(3_000) })),
        (id) => makeParticipant(id, { leaseExpiresAt: at(0) }),
      );
      const [second, first] = participants as [Participant, Participant];
      await store().transaction({}, async (tx) => {
        expect(await tx.expiredParticipants(context.contextId, at(2_000), 10)).toEqual([first, second]);
        expect(await tx.expiredParticipants(context.contextId, at(2_000), 1)).toEqual([first]);
        expect(await tx.expiredParticipants(context.contextId, at(999), 10)).toEqual([]);
        expect(await tx.expiredParticipants(randomUUID(), at(9_999), 10)).toEqual([]);
      });
    });

    it("finds the latest activity among leases still current", async () => {
      const { context } = await contextWith(
        (id) => makeParticipant(id, { lastActivityAt: at(4_000), leaseExpiresAt: at(34_000) }),
        (id) => makeParticipant(id, { lastActivityAt: at(6_000), leaseExpiresAt: at(20_000) }),
        (id) => lapsed(makeParticipant(id, { lastActivityAt: at(9_000), leaseExpiresAt: at(9_500) })),
      );
      await store().transaction({}, async (tx) => {
        expect(await tx.latestPresence(context.contextId, at(10_000))).toEqual(at(6_000));
        expect(await tx.latestPresence(context.contextId, at(20_000))).toEqual(at(4_000));
        expect(await tx.latestPresence(context.contextId, at(34_000))).toBeNull();
        expect(await tx.latestPresence(randomUUID(), at(0))).toBeNull();
      });
    });
  });

  describe("reading as a member", () => {
    it("lists and counts the PRIVATE contexts the principal is a participant of", async () => {
      const bobPrivate = makeContext({ owner: "bob", createdAt: at(1), participantCount: 1 });
      const bobOther = makeContext({ owner: "bob", createdAt: at(2) });
      const bobPublic = makeContext({ owner: "bob", visibility: "PUBLIC", createdAt: at(3) });
      await insert(bobPrivate, bobOther, bobPublic);
      await join(
        makeParticipant(bobPrivate.contextId, { agentId: "carol" }),
        makeParticipant(bobPublic.contextId, { agentId: "carol" }),
        makeParticipant(bobOther.contextId, { agentId: "dave" }),
      );
      const carol = await store().listContexts({}, { principal: "carol", filter: {}, limit: 10 });
      expect(carol.contexts.map((c) => c.contextId)).toEqual([bobPublic.contextId, bobPrivate.contextId]);
      expect(carol.totalSize).toBe(2);
      expect(carol.contexts[1]).toEqual(await current(store(), bobPrivate.contextId));
      // Filters and the keyset still apply on top of membership.
      const paused = await store().listContexts({}, { principal: "carol", filter: { status: "PAUSED" }, limit: 10 });
      expect(paused.totalSize).toBe(0);
      const rest = await store().listContexts({}, {
        principal: "carol",
        filter: {},
        limit: 10,
        after: { createdAt: bobPublic.createdAt, contextId: bobPublic.contextId },
      });
      expect(rest.contexts.map((c) => c.contextId)).toEqual([bobPrivate.contextId]);

      const stats = await store().contextStatistics({}, "carol");
      expect(stats).toEqual([
        { status: "ACTIVE", lifecycleStage: "PLANNING", type: "COLLABORATIVE", contexts: 2, participants: 1, maxParticipants: 1 },
      ]);
      // A stranger reads only the PUBLIC one; the owner reads all three.
      expect((await store().listContexts({}, { principal: "erin", filter: {}, limit: 10 })).totalSize).toBe(1);
      expect((await store().listContexts({}, { principal: "bob", filter: {}, limit: 10 })).totalSize).toBe(3);
    });
  });
});
