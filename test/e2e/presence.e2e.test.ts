/**
 * Presence leases and context expiry with the real sweeper, on PGlite and on Postgres, with short
 * settings (PRESENCE_TTL_MS 300 or 500, SWEEP_INTERVAL_MS 50). Everything is observed over the wire (and,
 * for a deleted context's last event, in its retained event rows); every wait polls for the
 * condition with a bound and never asserts how long it took.
 */
import { asc, eq } from "drizzle-orm";
import { status } from "@grpc/grpc-js";
import { expect, it } from "vitest";
import { ContextStatus } from "../../gen/mplp/context/v1/context_pb.js";
import { ContextService } from "../../gen/mplp/context/v1/context_service_pb.js";
import { ContextEventType, type ContextEvent } from "../../gen/mplp/context/v1/event_pb.js";
import { ParticipantStatus } from "../../gen/mplp/context/v1/participant_pb.js";
import { ParticipantService } from "../../gen/mplp/context/v1/participant_service_pb.js";
import { contextEvents } from "../../src/store/schema.js";
import { errorDetails } from "../../src/transport/grpc-client.js";
import { describeOnApps, type AppUnderTest } from "./support/app.js";
import { failure } from "./support/failure.js";
import { allEvents, as, createContext, delay, eventually, holdKeepAlive, participantOf } from "./support/participants.js";

/** The lease of the expiry suite: short, so lapses come quickly. */
const TTL_MS = 300;
/** The lease of the renewal suite: a little longer, so a busy shared machine's stalls don't lapse a held stream. */
const HELD_TTL_MS = 500;
const alice = as("alice");

/** The participant events of one participant: [type, status in the payload, reason, actor, revision]. */
function trailOf(events: readonly ContextEvent[], participantId: string) {
  return events
    .filter((e) => participantOf(e) === participantId)
    .map((e) => ({
      type: ContextEventType[e.type],
      status: e.payload.case === "participant" ? ParticipantStatus[e.payload.value.status] : undefined,
      reason: e.reason,
      actor: e.actor,
      revision: e.revision,
    }));
}

function clients(under: AppUnderTest) {
  const contexts = under.client(ContextService);
  const participants = under.client(ParticipantService);
  return {
    contexts,
    participants,
    context: async (contextId: string) => (await contexts.getContext({ contextId }, alice)).context!,
    add: async (contextId: string, agentId: string) =>
      (await participants.addParticipant({ contextId, participant: { agentId } }, alice)).participant!,
    statusOf: async (contextId: string, participantId: string) =>
      (await participants.getParticipant({ contextId, participantId }, alice)).participant!.status,
    isGone: async (call: Promise<unknown>) => {
      try {
        await call;
        return undefined;
      } catch (error) {
        if (errorDetails(error).code === status.NOT_FOUND) return true;
        throw error;
      }
    },
  };
}

await describeOnApps(
  "presence: lapsed leases and expiry (activity timeout 300 ms)",
  (under) => {
    it("takes a participant that never renews ACTIVE → INACTIVE → removed, each step an event at a higher revision", async () => {
      const { contexts, participants, context, add, isGone } = clients(under);
      const c = await createContext(contexts, "alice", "lapse");
      const p = await add(c.contextId, "silent");
      expect(p.status).toBe(ParticipantStatus.ACTIVE);

      await eventually("the silent participant is removed", () =>
        isGone(participants.getParticipant({ contextId: c.contextId, participantId: p.participantId }, alice)),
      );
      const trail = trailOf(await allEvents(contexts, c.contextId, "alice"), p.participantId);
      expect(trail).toEqual([
        { type: "PARTICIPANT_JOINED", status: "ACTIVE", reason: "", actor: "alice", revision: 2n },
        { type: "PARTICIPANT_UPDATED", status: "INACTIVE", reason: "lease expired", actor: "system", revision: 3n },
        { type: "PARTICIPANT_LEFT", status: expect.any(String), reason: "expired", actor: "system", revision: 4n },
      ]);
      expect(await context(c.contextId)).toMatchObject({ participantCount: 0, revision: 4n, status: ContextStatus.ACTIVE });
      const listed = await participants.listParticipants({ contextId: c.contextId }, alice);
      expect([listed.participants, listed.totalSize]).toEqual([[], 0]);
    });

    it("terminates a context past timeout_ms with reason expired, and with auto_cleanup deletes it after cleanup_delay_ms", async () => {
      const { contexts, context, isGone } = clients(under);
      const kept = await createContext(contexts, "alice", "kept", { configuration: { timeoutMs: 300n, autoCleanup: false } });
      const cleaned = await createContext(contexts, "alice", "cleaned", { configuration: { timeoutMs: 300n, autoCleanup: true, cleanupDelayMs: 1500n } });
      const forever = await createContext(contexts, "alice", "forever", { configuration: { timeoutMs: 0n } });

      await eventually("the context without auto_cleanup is TERMINATED", async () =>
        (await context(kept.contextId)).status === ContextStatus.TERMINATED ? true : undefined,
      );
      const expiry = (await allEvents(contexts, kept.contextId, "alice")).at(-1)!;
      expect(expiry).toMatchObject({ type: ContextEventType.CONTEXT_STATUS_CHANGED, reason: "expired", actor: "system", revision: 2n });
      expect(expiry.payload.case === "context" ? expiry.payload.value.status : undefined).toBe(ContextStatus.TERMINATED);

      await eventually("the auto_cleanup context is deleted", () => isGone(contexts.getContext({ contextId: cleaned.contextId }, alice)));
      // The context is gone but its events are kept: expired, then deleted by cleanup.
      const rows = await under
        .app()
        .database.db.select({ type: contextEvents.type, reason: contextEvents.reason, revision: contextEvents.revision })
        .from(contextEvents)
        .where(eq(contextEvents.contextId, cleaned.contextId))
        .orderBy(asc(contextEvents.revision), asc(contextEvents.seq));
      expect(rows.slice(1).map((r) => [r.reason, r.revision])).toEqual([
        ["expired", 2],
        ["cleanup", 3],
      ]);
      expect(rows.map((r) => r.type).join(" ")).toMatch(/created.*status.changed.*deleted/i);

      // Meanwhile (well over timeout_ms), without auto_cleanup it stayed TERMINATED; timeout_ms 0 never expires.
      expect((await context(kept.contextId)).status).toBe(ContextStatus.TERMINATED);
      expect(await context(forever.contextId)).toMatchObject({ status: ContextStatus.ACTIVE, revision: 1n });
    });
  },
  { env: { PRESENCE_TTL_MS: String(TTL_MS), PARTICIPANT_ACTIVITY_TIMEOUT_MS: String(TTL_MS), SWEEP_INTERVAL_MS: "50" } },
);

await describeOnApps(
  "presence: renewal (activity timeout 10 min)",
  (under) => {
    it("keeps a participant ACTIVE across many TTLs while a KeepAlive stream renews every TTL/3; closing it lets the lease lapse", async () => {
      const { contexts, participants, context, add, statusOf } = clients(under);
      const c = await createContext(contexts, "alice", "held");
      const p = await add(c.contextId, "bot");
      const stream = holdKeepAlive(participants, { contextId: c.contextId, participantId: p.participantId }, "bot", HELD_TTL_MS / 3);
      try {
        const start = Date.now();
        const seen: ParticipantStatus[] = [];
        while (Date.now() - start < 6 * HELD_TTL_MS) {
          seen.push(await statusOf(c.contextId, p.participantId));
          await delay(HELD_TTL_MS / 2);
        }
        expect(seen.length).toBeGreaterThanOrEqual(5);
        expect(seen.every((s) => s === ParticipantStatus.ACTIVE), `statuses while held: ${seen.map((s) => ParticipantStatus[s]).join(",")}`).toBe(true);
        expect(stream.responses.length).toBeGreaterThanOrEqual(5);
        expect(stream.responses.every((r) => r.participantId === p.participantId && r.status === ParticipantStatus.ACTIVE)).toBe(true);
        // Renewing an ACTIVE lease is not a change: no revision, no event.
        expect((await context(c.contextId)).revision).toBe(2n);
      } finally {
        await stream.close();
      }

      await eventually("the participant is INACTIVE once the stream is closed", async () =>
        (await statusOf(c.contextId, p.participantId)) === ParticipantStatus.INACTIVE ? true : undefined,
      );
      const trail = trailOf(await allEvents(contexts, c.contextId, "alice"), p.participantId);
      expect(trail.map((t) => [t.type, t.status, t.reason, t.revision])).toEqual([
        ["PARTICIPANT_JOINED", "ACTIVE", "", 2n],
        ["PARTICIPANT_UPDATED", "INACTIVE", "lease expired", 3n],
      ]);
      // INACTIVE, not removed: the activity timeout is long here.
      expect(await context(c.contextId)).toMatchObject({ participantCount: 1, revision: 3n });
    });

    it("revives an INACTIVE participant on Heartbeat, as a PARTICIPANT_UPDATED at the next revision", async () => {
      const { contexts, participants, context, add, statusOf } = clients(under);
      const c = await createContext(contexts, "alice", "revive");
      const p = await add(c.contextId, "sleepy");
      await eventually("the participant is INACTIVE", async () =>
        (await statusOf(c.contextId, p.participantId)) === ParticipantStatus.INACTIVE ? true : undefined,
      );
      const beat = await participants.heartbeat({ contextId: c.contextId, participantId: p.participantId }, as("sleepy"));
      expect(beat.status).toBe(ParticipantStatus.ACTIVE);
      expect(beat.leaseExpiresAt).toBeDefined();
      const trail = trailOf(await allEvents(contexts, c.contextId, "alice"), p.participantId);
      expect(trail.slice(0, 3).map((t) => [t.type, t.status, t.revision])).toEqual([
        ["PARTICIPANT_JOINED", "ACTIVE", 2n],
        ["PARTICIPANT_UPDATED", "INACTIVE", 3n],
        ["PARTICIPANT_UPDATED", "ACTIVE", 4n],
      ]);
      expect(trail[2]!.actor).toBe("sleepy");
      expect((await context(c.contextId)).participantCount).toBe(1);
    });

    it("revives an INACTIVE participant on a KeepAlive message too", async () => {
      const { contexts, participants, add, statusOf } = clients(under);
      const c = await createContext(contexts, "alice", "revive-stream");
      const p = await add(c.contextId, "sleepy");
      await eventually("the participant is INACTIVE", async () =>
        (await statusOf(c.contextId, p.participantId)) === ParticipantStatus.INACTIVE ? true : undefined,
      );
      const stream = holdKeepAlive(participants, { contextId: c.contextId, participantId: p.participantId }, "sleepy", HELD_TTL_MS / 3);
      try {
        await eventually("KeepAlive answered", async () => (stream.responses.length > 0 ? true : undefined));
        expect(stream.responses[0]).toMatchObject({ participantId: p.participantId, status: ParticipantStatus.ACTIVE });
      } finally {
        await stream.close();
      }
      const trail = trailOf(await allEvents(contexts, c.contextId, "alice"), p.participantId);
      expect(trail.slice(0, 3).map((t) => [t.type, t.status, t.revision])).toEqual([
        ["PARTICIPANT_JOINED", "ACTIVE", 2n],
        ["PARTICIPANT_UPDATED", "INACTIVE", 3n],
        ["PARTICIPANT_UPDATED", "ACTIVE", 4n],
      ]);
    });

    it("lets nobody renew another's lease without MANAGE_PARTICIPANTS, and lets the owner", async () => {
      const { contexts, participants, add } = clients(under);
      const c = await createContext(contexts, "alice", "others");
      const p = await add(c.contextId, "bot");
      await add(c.contextId, "peer");
      const err = await failure(participants.heartbeat({ contextId: c.contextId, participantId: p.participantId }, as("peer")));
      expect([err.code, err.reason]).toEqual([status.PERMISSION_DENIED, "FORBIDDEN"]);
      await expect(participants.heartbeat({ contextId: c.contextId, participantId: p.participantId }, alice)).resolves.toMatchObject({
        status: ParticipantStatus.ACTIVE,
      });
    });

    it("does not expire a context while a participant holds a live lease, and expires it once the lease lapses", async () => {
      const { contexts, participants, context, add } = clients(under);
      const c = await createContext(contexts, "alice", "busy", { configuration: { timeoutMs: BigInt(HELD_TTL_MS), autoCleanup: false } });
      const p = await add(c.contextId, "bot");
      const stream = holdKeepAlive(participants, { contextId: c.contextId, participantId: p.participantId }, "bot", HELD_TTL_MS / 3);
      try {
        const start = Date.now();
        while (Date.now() - start < 6 * HELD_TTL_MS) {
          expect((await context(c.contextId)).status, "status while the lease is held").toBe(ContextStatus.ACTIVE);
          await delay(HELD_TTL_MS / 2);
        }
      } finally {
        await stream.close();
      }
      await eventually("the idle context is TERMINATED", async () =>
        (await context(c.contextId)).status === ContextStatus.TERMINATED ? true : undefined,
      );
      const last = (await allEvents(contexts, c.contextId, "alice")).filter((e) => e.type === ContextEventType.CONTEXT_STATUS_CHANGED);
      expect(last.map((e) => [e.reason, e.actor])).toEqual([["expired", "system"]]);
    });
  },
  { env: { PRESENCE_TTL_MS: String(HELD_TTL_MS), PARTICIPANT_ACTIVITY_TIMEOUT_MS: "600000", SWEEP_INTERVAL_MS: "50" } },
);
