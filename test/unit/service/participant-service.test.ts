import { beforeEach, describe, expect, it } from "vitest";
import type { Context } from "../../../src/domain/context.js";
import type { Caller } from "../../../src/service/caller.js";
import { ContextService } from "../../../src/service/context-service.js";
import { ParticipantService } from "../../../src/service/participant-service.js";
import { Sweeper } from "../../../src/service/sweeper.js";
import { silentLogger } from "../../../src/logger.js";
import { MemoryContextStore } from "../../support/memory-store.js";
import { caught as failure } from "../../support/app-error-assertions.js";

const owner: Caller = { principal: "owner" };
const as = (principal: string): Caller => ({ principal });
const TTL = 1_000;
const INACTIVE_FOR = 5_000;


describe(ParticipantService.name, () => {
  let time: number;
  let store: MemoryContextStore;
  let contexts: ContextService;
  let participants: ParticipantService;
  let sweeper: Sweeper;
  let context: Context;

  const clock = { now: () => new Date(time) };
  const add = (agentId: string, extra: Record<string, unknown> = {}, caller = owner) =>
    participants.add(caller, { contextId: context.contextId, participant: { agentId, ...extra }, requestId: "" });
  const revision = async () => (await contexts.get(owner, context.contextId, undefined)).context.revision;

  beforeEach(async () => {
    time = Date.parse("2026-01-01T00:00:00.000Z");
    store = new MemoryContextStore(() => time);
    contexts = new ContextService(store, clock);
    const presence = { ttlMs: TTL, activityTimeoutMs: INACTIVE_FOR };
    participants = new ParticipantService(store, clock, presence);
    sweeper = new Sweeper(store, clock, presence, { intervalMs: 1000, batchSize: 100, retentionRevisions: 10_000 }, silentLogger());
    context = await contexts.create(owner, { context: { name: "room", type: "COLLABORATIVE", configuration: { maxParticipants: 3 } }, requestId: "" });
  });

  describe("add", () => {
    it("joins with the default role, a lease, a revision and a PARTICIPANT_JOINED event", async () => {
      const p = await add("agent-1");
      expect(p).toMatchObject({ agentId: "agent-1", roles: ["contributor"], status: "ACTIVE", participantType: "AGENT" });
      expect(p.leaseExpiresAt.getTime()).toBe(time + TTL);
      expect(await revision()).toBe(2);
      expect((await contexts.get(owner, context.contextId, undefined)).context.participantCount).toBe(1);
      expect(store.eventsOf(context.contextId).at(-1)).toMatchObject({ type: "PARTICIPANT_JOINED", revision: 2 });
    });

    it("refuses the same agent twice, a full context, and missing requirements", async () => {
      await add("a");
      expect((await failure(add("a"))).reason).toBe("PARTICIPANT_ALREADY_EXISTS");
      await add("b");
      await add("c");
      expect((await failure(add("d"))).reason).toBe("CONTEXT_FULL");
    });

    it("adds a batch as one revision, or nobody when it does not fit", async () => {
      await add("a");
      const err = await failure(
        participants.batchAdd(owner, { contextId: context.contextId, participants: [{ agentId: "x" }, { agentId: "y" }, { agentId: "z" }], requestId: "" }),
      );
      expect(err.reason).toBe("CONTEXT_FULL");
      const added = await participants.batchAdd(owner, { contextId: context.contextId, participants: [{ agentId: "x" }, { agentId: "y" }], requestId: "" });
      expect(added).toHaveLength(2);
      const joined = store.eventsOf(context.contextId).filter((e) => e.type === "PARTICIPANT_JOINED" && e.revision === 3);
      expect(joined.map((e) => e.seq)).toEqual([0, 1]);
    });

    it("lets a principal add itself to an OPEN context, but not with roles of its choosing", async () => {
      const open = await contexts.create(owner, {
        context: { name: "open", type: "COLLABORATIVE", accessControl: { joinPolicy: "OPEN" } },
        requestId: "",
      });
      const self = (agentId: string, roles: string[] = []) =>
        participants.add(as("bob"), { contextId: open.contextId, participant: { agentId, roles }, requestId: "" });
      expect((await failure(self("bob", ["admin"]))).reason).toBe("FORBIDDEN");
      expect((await failure(self("carol"))).reason).toBe("FORBIDDEN");
      await expect(self("bob")).resolves.toMatchObject({ roles: ["contributor"] });
    });

    it("checks required capabilities and roles", async () => {
      const strict = await contexts.create(owner, {
        context: { name: "strict", type: "COLLABORATIVE", accessControl: { requiredCapabilities: ["plan"], requiredRoles: ["reviewer"] } },
        requestId: "",
      });
      const join = (capabilities: string[], roles: string[]) =>
        participants.add(owner, { contextId: strict.contextId, participant: { agentId: "a", capabilities, roles }, requestId: "" });
      expect((await failure(join([], ["reviewer"]))).reason).toBe("MISSING_CAPABILITY");
      expect((await failure(join(["plan"], []))).reason).toBe("MISSING_ROLE");
      await expect(join(["plan"], ["reviewer"])).resolves.toBeDefined();
    });

    it("returns the first result for a retried request_id", async () => {
      const req = { contextId: context.contextId, participant: { agentId: "a" }, requestId: "r1" };
      const first = await participants.add(owner, req);
      expect(await participants.add(owner, req)).toEqual(first);
    });
  });

  describe("permissions", () => {
    it("grants members their roles' permissions and nothing more", async () => {
      await add("viewer", { roles: ["viewer"] });
      await add("writer", { roles: ["contributor"] });
      const describeCtx = (c: Caller) =>
        contexts.update(c, { contextId: context.contextId, patch: { description: "x" }, updateMask: ["description"], expectedRevision: 0 });
      expect((await failure(describeCtx(as("viewer")))).reason).toBe("FORBIDDEN");
      await expect(describeCtx(as("writer"))).resolves.toBeDefined();
      await expect(contexts.get(as("viewer"), context.contextId, undefined)).resolves.toBeDefined();
      expect((await failure(contexts.get(as("stranger"), context.contextId, undefined))).reason).toBe("FORBIDDEN");
      expect((await contexts.list(as("viewer"), { pageSize: 0, pageToken: "", filter: {} })).totalSize).toBe(1);
    });

    it("lets a participant change its own name but not its own roles", async () => {
      const p = await add("agent", { roles: ["viewer"] });
      const update = (mask: string[]) =>
        participants.update(as("agent"), {
          contextId: context.contextId,
          participantId: p.participantId,
          patch: { displayName: "Agent", roles: ["admin"] },
          updateMask: mask,
          expectedRevision: 0,
        });
      await expect(update(["display_name"])).resolves.toMatchObject({ displayName: "Agent", roles: ["viewer"] });
      expect((await failure(update(["roles"]))).reason).toBe("FORBIDDEN");
    });

    it("lets a participant remove itself but not others", async () => {
      const a = await add("a");
      const b = await add("b");
      expect((await failure(participants.remove(as("a"), { contextId: context.contextId, participantId: b.participantId, reason: "" }))).reason).toBe("FORBIDDEN");
      await participants.remove(as("a"), { contextId: context.contextId, participantId: a.participantId, reason: "done" });
      expect((await contexts.get(owner, context.contextId, undefined)).context.participantCount).toBe(1);
      expect(store.eventsOf(context.contextId).at(-1)).toMatchObject({ type: "PARTICIPANT_LEFT", reason: "done" });
    });
  });

  describe("presence", () => {
    it("lapses a lease to INACTIVE, then removes the participant with reason expired", async () => {
      const p = await add("agent");
      time += TTL;
      expect(await sweeper.sweepOnce()).toMatchObject({ lapsed: 1 });
      expect(store.participant(p.participantId)).toMatchObject({ status: "INACTIVE", inactiveSince: p.leaseExpiresAt });
      expect(await sweeper.sweepOnce()).toMatchObject({ lapsed: 0, removed: 0 });
      time += INACTIVE_FOR;
      expect(await sweeper.sweepOnce()).toMatchObject({ removed: 1 });
      const tail = store.eventsOf(context.contextId).slice(-2);
      expect(tail.map((e) => [e.type, e.reason, e.actor])).toEqual([
        ["PARTICIPANT_UPDATED", "lease expired", "system"],
        ["PARTICIPANT_LEFT", "expired", "system"],
      ]);
      expect(tail[1]!.revision).toBe(tail[0]!.revision + 1);
      expect((await contexts.get(owner, context.contextId, undefined)).context.participantCount).toBe(0);
    });

    it("keeps a heartbeating participant ACTIVE, and revives an INACTIVE one with a revision", async () => {
      const p = await add("agent");
      for (let i = 0; i < 5; i++) {
        time += TTL / 2;
        await participants.heartbeat(as("agent"), { contextId: context.contextId, participantId: p.participantId });
        expect((await sweeper.sweepOnce()).lapsed).toBe(0);
      }
      const before = await revision();
      time += TTL;
      await sweeper.sweepOnce();
      const back = await participants.heartbeat(as("agent"), { contextId: context.contextId, participantId: p.participantId });
      expect(back).toMatchObject({ status: "ACTIVE", inactiveSince: null });
      expect(await revision()).toBe(before + 2);
    });

    it("does not let others renew someone's lease without MANAGE_PARTICIPANTS", async () => {
      const p = await add("agent");
      await add("peer");
      const err = await failure(participants.heartbeat(as("peer"), { contextId: context.contextId, participantId: p.participantId }));
      expect(err.reason).toBe("FORBIDDEN");
    });
  });

  describe("context expiry", () => {
    it("terminates an idle context with reason expired, then deletes it after the cleanup delay", async () => {
      const idle = await contexts.create(owner, {
        context: { name: "idle", type: "PIPELINE", configuration: { timeoutMs: 100, cleanupDelayMs: 200 } },
        requestId: "",
      });
      time += 100;
      expect((await sweeper.sweepOnce()).terminated).toBeGreaterThanOrEqual(1);
      expect((await contexts.get(owner, idle.contextId, undefined)).context).toMatchObject({ status: "TERMINATED" });
      expect(store.eventsOf(idle.contextId).at(-1)).toMatchObject({ type: "CONTEXT_STATUS_CHANGED", reason: "expired" });
      time += 200;
      expect((await sweeper.sweepOnce()).deleted).toBeGreaterThanOrEqual(1);
      expect((await failure(contexts.get(owner, idle.contextId, undefined))).reason).toBe("CONTEXT_NOT_FOUND");
      expect(store.eventsOf(idle.contextId).at(-1)).toMatchObject({ type: "CONTEXT_DELETED", reason: "cleanup" });
    });

    it("keeps a context whose participant holds a live lease", async () => {
      const busy = await contexts.create(owner, { context: { name: "busy", type: "PIPELINE", configuration: { timeoutMs: 100 } }, requestId: "" });
      await participants.add(owner, { contextId: busy.contextId, participant: { agentId: "a" }, requestId: "" });
      time += 500;
      await sweeper.sweepOnce();
      expect((await contexts.get(owner, busy.contextId, undefined)).context.status).toBe("ACTIVE");
    });
  });
});
