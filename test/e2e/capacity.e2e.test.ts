/**
 * max_participants under concurrency, on PGlite and on Postgres: however many calls race for the
 * last seats, exactly max_participants get in, the rest get RESOURCE_EXHAUSTED/CONTEXT_FULL, and
 * participant_count, ListParticipants and the event trail all agree. A batch is all or nothing.
 */
import { status } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { JoinPolicy } from "../../gen/mplp/context/v1/context_pb.js";
import { ContextService } from "../../gen/mplp/context/v1/context_service_pb.js";
import { ContextEventType } from "../../gen/mplp/context/v1/event_pb.js";
import { ParticipantService } from "../../gen/mplp/context/v1/participant_service_pb.js";
import { errorDetails } from "../../src/transport/grpc-client.js";
import { describeOnApps } from "./support/app.js";
import { failure } from "./support/failure.js";
import { allEvents, as, createContext } from "./support/participants.js";

const alice = as("alice");

await describeOnApps("participant capacity over gRPC", (under) => {
  const contexts = () => under.client(ContextService);
  const participants = () => under.client(ParticipantService);
  const count = async (contextId: string) => (await contexts().getContext({ contextId }, alice)).context!;
  const listedAgents = async (contextId: string) => {
    const page = await participants().listParticipants({ contextId, pageSize: 1000 }, alice);
    return { agents: page.participants.map((p) => p.agentId).sort(), total: page.totalSize };
  };
  const batch = (contextId: string, agents: string[]) =>
    participants().batchAddParticipants({ contextId, participants: agents.map((agentId) => ({ agentId })) }, alice);

  describe("AddParticipant", () => {
    it("lets exactly 10 of 50 concurrent calls into a context with max_participants 10; the other 40 get CONTEXT_FULL", async () => {
      const c = await createContext(contexts(), "alice", "crowded", { configuration: { maxParticipants: 10 } });
      const client = participants();
      const agents = Array.from({ length: 50 }, (_, i) => `agent-${String(i).padStart(2, "0")}`);
      const outcomes = await Promise.allSettled(agents.map((agentId) => client.addParticipant({ contextId: c.contextId, participant: { agentId } }, alice)));

      const admitted = agents.filter((_, i) => outcomes[i]!.status === "fulfilled").sort();
      const refusals = outcomes.flatMap((o) => (o.status === "rejected" ? [errorDetails(o.reason)] : []));
      expect(admitted).toHaveLength(10);
      expect(refusals.map((e) => `${e.code}/${e.reason}`)).toEqual(Array(40).fill(`${status.RESOURCE_EXHAUSTED}/CONTEXT_FULL`));

      const after = await count(c.contextId);
      expect(after.participantCount).toBe(10);
      expect(after.revision).toBe(11n);
      expect(await listedAgents(c.contextId)).toEqual({ agents: admitted, total: 10 });
      const joined = (await allEvents(contexts(), c.contextId, "alice")).filter((e) => e.type === ContextEventType.PARTICIPANT_JOINED);
      expect(joined.map((e) => e.revision)).toEqual([2n, 3n, 4n, 5n, 6n, 7n, 8n, 9n, 10n, 11n]);
    });

    it("lets 50 concurrent self-joins into an OPEN context up to capacity, each principal at most once", async () => {
      const c = await createContext(contexts(), "alice", "open", { configuration: { maxParticipants: 10 }, accessControl: { joinPolicy: JoinPolicy.OPEN } });
      const client = participants();
      // Ten principals, each trying five times at once: ten memberships, no duplicates.
      const principals = Array.from({ length: 50 }, (_, i) => `self-${i % 10}`);
      const outcomes = await Promise.allSettled(
        principals.map((agentId) => client.addParticipant({ contextId: c.contextId, participant: { agentId } }, as(agentId))),
      );
      const reasons = outcomes.map((o) => (o.status === "fulfilled" ? "OK" : errorDetails(o.reason).reason));
      expect(reasons.filter((r) => r === "OK")).toHaveLength(10);
      expect(new Set(reasons.filter((r) => r !== "OK"))).toEqual(new Set(["PARTICIPANT_ALREADY_EXISTS"]));
      expect((await count(c.contextId)).participantCount).toBe(10);
      expect((await listedAgents(c.contextId)).agents).toEqual(Array.from({ length: 10 }, (_, i) => `self-${i}`).sort());
    });
  });

  describe("BatchAddParticipants", () => {
    it("adds nobody from a batch of 5 into a context with 3 free slots, then fits a batch of 3", async () => {
      const c = await createContext(contexts(), "alice", "batch", { configuration: { maxParticipants: 5 } });
      await batch(c.contextId, ["old-1", "old-2"]);
      const before = await count(c.contextId);
      expect(before.participantCount).toBe(2);

      const err = await failure(batch(c.contextId, ["n1", "n2", "n3", "n4", "n5"]));
      expect([err.code, err.reason]).toEqual([status.RESOURCE_EXHAUSTED, "CONTEXT_FULL"]);
      expect(await count(c.contextId)).toMatchObject({ participantCount: 2, revision: before.revision });
      expect(await listedAgents(c.contextId)).toEqual({ agents: ["old-1", "old-2"], total: 2 });

      await batch(c.contextId, ["n1", "n2", "n3"]);
      expect(await count(c.contextId)).toMatchObject({ participantCount: 5, revision: before.revision + 1n });
    });

    it("admits exactly one of two concurrent batches of 3 racing for 4 free slots", async () => {
      const c = await createContext(contexts(), "alice", "race", { configuration: { maxParticipants: 4 } });
      const client = participants();
      const outcomes = await Promise.allSettled([
        client.batchAddParticipants({ contextId: c.contextId, participants: [{ agentId: "a1" }, { agentId: "a2" }, { agentId: "a3" }] }, alice),
        client.batchAddParticipants({ contextId: c.contextId, participants: [{ agentId: "b1" }, { agentId: "b2" }, { agentId: "b3" }] }, alice),
      ]);
      const reasons = outcomes.map((o) => (o.status === "fulfilled" ? "OK" : errorDetails(o.reason).reason)).sort();
      expect(reasons).toEqual(["CONTEXT_FULL", "OK"]);
      expect(await count(c.contextId)).toMatchObject({ participantCount: 3, revision: 2n });
      const { agents } = await listedAgents(c.contextId);
      expect([["a1", "a2", "a3"], ["b1", "b2", "b3"]]).toContainEqual(agents);
    });
  });
});
