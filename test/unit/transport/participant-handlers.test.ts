import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ParticipantStatus, ParticipantType, Permission } from "../../../gen/mplp/context/v1/participant_pb.js";
import { ParticipantService } from "../../../gen/mplp/context/v1/participant_service_pb.js";
import { AppError } from "../../../src/domain/app-error.js";
import type { Participant } from "../../../src/domain/participant.js";
import type { MethodsOf } from "../../../src/transport/grpc-adapter.js";
import { errorDetails, type PromiseClient } from "../../../src/transport/grpc-client.js";
import {
  participantHandlers,
  type ParticipantServiceHandlers,
  type ParticipantUseCases,
} from "../../../src/transport/participant-handlers.js";
import { startTestServer, type TestServer } from "../../e2e/support/server.js";

function deferred<T = void>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener("abort", () => resolve(), { once: true });
  });
}

const CONTEXT_ID = "4f1c2b7e-9a7d-4c1e-8f00-0a1b2c3d4e5f";
const LEASE_BASE = Date.parse("2024-01-01T00:00:30Z");

const participant: Participant = {
  participantId: "9b2f3c4d-1e2f-4a5b-8c6d-7e8f9a0b1c2d",
  contextId: CONTEXT_ID,
  agentId: "agent-7",
  participantType: "HUMAN",
  displayName: "Ann",
  status: "ACTIVE",
  roles: ["contributor"],
  capabilities: ["chat"],
  metadata: { k: 1 },
  joinedAt: new Date("2024-01-01T00:00:00Z"),
  lastActivityAt: new Date("2024-01-01T00:00:00Z"),
  leaseExpiresAt: new Date(LEASE_BASE),
  inactiveSince: null,
};

/**
 * A fake of the use cases that records what each was called with. Heartbeat answers with the
 * named participant and a lease one second later per renewal; participant id "gone" is NOT_FOUND,
 * and context id "gated" waits for `gate` before answering.
 */
function recordingUseCases() {
  const calls: Array<{ method: string; caller: unknown; input: unknown }> = [];
  const record = (method: string, caller: unknown, input: unknown) => calls.push({ method, caller, input });
  const gate = { value: deferred() };
  const gatedCalled = { value: deferred() };
  let renewals = 0;
  const useCases: ParticipantUseCases = {
    async add(caller, input) {
      record("add", caller, input);
      return participant;
    },
    async batchAdd(caller, input) {
      record("batchAdd", caller, input);
      return input.participants.map((p, i) => ({ ...participant, participantId: `p${i}`, agentId: p.agentId ?? "" }));
    },
    async get(caller, contextId, participantId) {
      record("get", caller, { contextId, participantId });
      return participant;
    },
    async update(caller, input) {
      record("update", caller, input);
      return { ...participant, displayName: input.patch.displayName ?? "" };
    },
    async remove(caller, input) {
      record("remove", caller, input);
      if (input.participantId === "gone") {
        throw new AppError("PARTICIPANT_NOT_FOUND", `participant ${input.participantId} not found`);
      }
    },
    async list(caller, input) {
      record("list", caller, input);
      return { participants: [participant, participant], nextPageToken: "next", totalSize: 9 };
    },
    async heartbeat(caller, input) {
      record("heartbeat", caller, input);
      if (input.participantId === "gone") {
        throw new AppError("PARTICIPANT_NOT_FOUND", `participant ${input.participantId} not found`, {
          metadata: { participant_id: input.participantId },
        });
      }
      if (input.contextId === "gated") {
        gatedCalled.value.resolve();
        await gate.value.promise;
      }
      renewals += 1;
      return { ...participant, participantId: input.participantId, leaseExpiresAt: new Date(LEASE_BASE + renewals * 1000) };
    },
  };
  return {
    useCases,
    calls,
    gate,
    gatedCalled,
    last: () => calls[calls.length - 1],
    callsFor: (method: string, contextId: string) =>
      calls.filter((c) => c.method === method && (c.input as { contextId: string }).contextId === contextId),
  };
}

describe(participantHandlers.name, () => {
  const fake = recordingUseCases();
  const keepAliveEnded = { value: deferred<"ok" | "aborted" | "failed">() };
  const keepAliveSignal = { value: deferred<AbortSignal>() };
  let served: TestServer;
  let api: PromiseClient<MethodsOf<typeof ParticipantService>>;
  const asAlice = { metadata: { "x-principal-id": "alice" } };

  beforeAll(async () => {
    const handlers = participantHandlers(fake.useCases);
    // Wrapped to learn when the server-side handler is done, instead of sleeping.
    const observed: ParticipantServiceHandlers = {
      ...handlers,
      async keepAlive(requests, ctx, send) {
        keepAliveSignal.value.resolve(ctx.signal);
        try {
          await handlers.keepAlive?.(requests, ctx, send);
          keepAliveEnded.value.resolve(ctx.signal.aborted ? "aborted" : "ok");
        } catch (error) {
          keepAliveEnded.value.resolve(ctx.signal.aborted ? "aborted" : "failed");
          throw error;
        }
      },
    };
    served = await startTestServer({ handlers: { context: {}, participant: observed } });
    api = served.client(ParticipantService);
  });
  afterAll(async () => {
    await served.close();
  });

  describe("addParticipant", () => {
    it("returns the added participant with derived permissions, passing the caller and the input", async () => {
      const deadline = Date.now() + 60_000;
      const response = await api.addParticipant(
        {
          contextId: CONTEXT_ID,
          participant: { agentId: "agent-7", participantType: ParticipantType.HUMAN, roles: ["contributor"], metadata: { k: 1 } },
          requestId: "r1",
        },
        { ...asAlice, deadline },
      );
      expect(response.participant).toMatchObject({
        participantId: participant.participantId,
        participantType: ParticipantType.HUMAN,
        status: ParticipantStatus.ACTIVE,
        permissions: [Permission.READ, Permission.WRITE],
        metadata: { k: 1 },
      });
      const call = fake.last();
      expect(call?.method).toBe("add");
      expect(call?.caller).toMatchObject({ principal: "alice", deadline: expect.any(Number) });
      expect(call?.input).toEqual({
        contextId: CONTEXT_ID,
        participant: { agentId: "agent-7", participantType: "HUMAN", displayName: "", roles: ["contributor"], capabilities: [], metadata: { k: 1 } },
        requestId: "r1",
      });
    });

    it("passes an empty input when the request carries no participant", async () => {
      await api.addParticipant({ contextId: CONTEXT_ID });
      expect(fake.last()?.input).toEqual({ contextId: CONTEXT_ID, participant: {}, requestId: "" });
      expect(fake.last()?.caller).toEqual({ principal: "anonymous" });
    });
  });

  describe("batchAddParticipants", () => {
    it("returns one participant per input, in order", async () => {
      const response = await api.batchAddParticipants(
        { contextId: CONTEXT_ID, participants: [{ agentId: "a" }, { agentId: "b", participantType: 7 as ParticipantType }], requestId: "r2" },
        asAlice,
      );
      expect(response.participants.map((p) => p.agentId)).toEqual(["a", "b"]);
      expect(fake.last()?.input).toMatchObject({
        contextId: CONTEXT_ID,
        requestId: "r2",
        participants: [
          { agentId: "a", participantType: undefined },
          { agentId: "b", participantType: "UNKNOWN(7)" },
        ],
      });
    });
  });

  describe("getParticipant", () => {
    it("returns the participant and passes both ids", async () => {
      const response = await api.getParticipant({ contextId: CONTEXT_ID, participantId: "p1" }, asAlice);
      expect(response.participant?.agentId).toBe("agent-7");
      expect(response.participant?.leaseExpiresAt).toEqual(timestampFromDate(new Date(LEASE_BASE)));
      expect(fake.last()).toMatchObject({ method: "get", input: { contextId: CONTEXT_ID, participantId: "p1" } });
    });
  });

  describe("updateParticipant", () => {
    it("takes the target ids from inside the participant and passes patch, mask and revision", async () => {
      const response = await api.updateParticipant({
        participant: { contextId: CONTEXT_ID, participantId: "p1", displayName: "Bea", capabilities: ["x"] },
        updateMask: { paths: ["display_name", "capabilities"] },
        expectedRevision: 12n,
      });
      expect(response.participant?.displayName).toBe("Bea");
      expect(fake.last()?.input).toEqual({
        contextId: CONTEXT_ID,
        participantId: "p1",
        patch: { agentId: "", participantType: undefined, displayName: "Bea", roles: [], capabilities: ["x"], metadata: undefined },
        updateMask: ["display_name", "capabilities"],
        expectedRevision: 12,
      });
    });

    it("passes empty ids and mask when the request carries neither", async () => {
      await api.updateParticipant({});
      expect(fake.last()?.input).toEqual({ contextId: "", participantId: "", patch: {}, updateMask: [], expectedRevision: 0 });
    });
  });

  describe("removeParticipant", () => {
    it("returns an empty response and passes the reason", async () => {
      const response = await api.removeParticipant({ contextId: CONTEXT_ID, participantId: "p1", reason: "done" });
      expect(response.$typeName).toBe("mplp.context.v1.RemoveParticipantResponse");
      expect(fake.last()?.input).toEqual({ contextId: CONTEXT_ID, participantId: "p1", reason: "done" });
    });

    it("returns NOT_FOUND when the use case finds no participant", async () => {
      const error = await api.removeParticipant({ contextId: CONTEXT_ID, participantId: "gone" }).catch((e: unknown) => e);
      expect(errorDetails(error)).toMatchObject({ code: grpc.status.NOT_FOUND, reason: "PARTICIPANT_NOT_FOUND" });
    });
  });

  describe("listParticipants", () => {
    it("returns the page and passes the filter as domain literals", async () => {
      const response = await api.listParticipants({
        contextId: CONTEXT_ID,
        pageSize: 5,
        pageToken: "tok",
        filter: { status: ParticipantStatus.INACTIVE, role: "admin" },
      });
      expect(response.participants).toHaveLength(2);
      expect(response.nextPageToken).toBe("next");
      expect(response.totalSize).toBe(9);
      expect(fake.last()?.input).toEqual({
        contextId: CONTEXT_ID,
        pageSize: 5,
        pageToken: "tok",
        filter: { status: "INACTIVE", role: "admin", capability: undefined, participantType: undefined },
      });
    });

    it("passes an empty filter when the request carries none", async () => {
      await api.listParticipants({ contextId: CONTEXT_ID });
      expect(fake.last()?.input).toEqual({ contextId: CONTEXT_ID, pageSize: 0, pageToken: "", filter: {} });
    });
  });

  describe("heartbeat", () => {
    it("returns the status and the renewed lease", async () => {
      const response = await api.heartbeat({ contextId: "hb", participantId: "p1" }, asAlice);
      expect(response.status).toBe(ParticipantStatus.ACTIVE);
      expect(response.leaseExpiresAt).toBeDefined();
      expect(fake.last()).toMatchObject({ method: "heartbeat", caller: { principal: "alice" }, input: { contextId: "hb", participantId: "p1" } });
    });

    it("returns NOT_FOUND when the participant is gone", async () => {
      const error = await api.heartbeat({ contextId: "hb", participantId: "gone" }).catch((e: unknown) => e);
      expect(errorDetails(error)).toMatchObject({ code: grpc.status.NOT_FOUND, reason: "PARTICIPANT_NOT_FOUND" });
    });
  });

  describe("keepAlive", () => {
    it("returns one response per request, in order, each with its renewed lease", async () => {
      keepAliveEnded.value = deferred();
      const ids = ["p1", "p2", "p3", "p4", "p5"];
      async function* requests() {
        for (const participantId of ids) yield { contextId: "ka-order", participantId };
      }
      const seen: Array<{ participantId: string; status: ParticipantStatus; lease: number }> = [];
      for await (const response of api.keepAlive(requests(), asAlice)) {
        seen.push({
          participantId: response.participantId,
          status: response.status,
          lease: Number(response.leaseExpiresAt?.seconds ?? 0n),
        });
      }
      expect(seen.map((s) => s.participantId)).toEqual(ids);
      expect(seen.every((s) => s.status === ParticipantStatus.ACTIVE)).toBe(true);
      // Each renewal pushed the lease further: the responses are the heartbeats' own answers, in order.
      expect(seen.map((s) => s.lease)).toEqual([...seen.map((s) => s.lease)].sort((a, b) => a - b));
      expect(new Set(seen.map((s) => s.lease)).size).toBe(ids.length);
      expect(fake.callsFor("heartbeat", "ka-order").map((c) => (c.input as { participantId: string }).participantId)).toEqual(ids);
      expect(fake.callsFor("heartbeat", "ka-order")[0]?.caller).toEqual({ principal: "alice" });
      expect(await keepAliveEnded.value.promise).toBe("ok");
    });

    it("ends OK with no responses when the client half-closes without sending", async () => {
      keepAliveEnded.value = deferred();
      // eslint-disable-next-line require-yield -- a stream that sends nothing
      async function* requests(): AsyncGenerator<{ contextId: string; participantId: string }> {
        return;
      }
      const seen: unknown[] = [];
      for await (const response of api.keepAlive(requests())) seen.push(response);
      expect(seen).toEqual([]);
      expect(await keepAliveEnded.value.promise).toBe("ok");
    });

    it("ends the stream with the heartbeat's status when one fails, renewing nothing after it", async () => {
      keepAliveEnded.value = deferred();
      async function* requests() {
        yield { contextId: "ka-fail", participantId: "p1" };
        yield { contextId: "ka-fail", participantId: "gone" };
        yield { contextId: "ka-fail", participantId: "p3" };
      }
      const seen: string[] = [];
      const error = await (async () => {
        for await (const response of api.keepAlive(requests())) seen.push(response.participantId);
      })().catch((e: unknown) => e);
      expect(errorDetails(error)).toMatchObject({
        code: grpc.status.NOT_FOUND,
        reason: "PARTICIPANT_NOT_FOUND",
        metadata: { participant_id: "gone" },
      });
      expect(seen).toEqual(["p1"]);
      expect(await keepAliveEnded.value.promise).toBe("failed");
      expect(fake.callsFor("heartbeat", "ka-fail").map((c) => (c.input as { participantId: string }).participantId)).toEqual(["p1", "gone"]);
    });

    it("stops renewing when the client cancels, even for requests already sent", async () => {
      keepAliveEnded.value = deferred();
      keepAliveSignal.value = deferred();
      fake.gate.value = deferred();
      fake.gatedCalled.value = deferred();
      const cancel = new AbortController();
      const sentAll = deferred();
      async function* requests() {
        yield { contextId: "gated", participantId: "p1" };
        yield { contextId: "gated", participantId: "p2" };
        sentAll.resolve();
        // Keep the request side open: the call ends by cancellation, not by half-close.
        await new Promise<void>((resolve) => cancel.signal.addEventListener("abort", () => resolve(), { once: true }));
      }
      const error = (async () => {
        for await (const _ of api.keepAlive(requests(), { signal: cancel.signal })) {
          // No response is expected: the first heartbeat is held until after the cancel.
        }
      })().catch((e: unknown) => e);
      await Promise.all([fake.gatedCalled.value.promise, sentAll.promise]);
      cancel.abort();
      expect(errorDetails(await error).code).toBe(grpc.status.CANCELLED);
      // The heartbeat in flight answers only once the server has seen the cancellation.
      await aborted(await keepAliveSignal.value.promise);
      fake.gate.value.resolve();
      expect(await keepAliveEnded.value.promise).toBe("aborted");
      expect(fake.callsFor("heartbeat", "gated")).toHaveLength(1);
    });
  });
});
