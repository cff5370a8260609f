import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ContextStatus, ContextType, ContextView, LifecycleStage } from "../../../gen/mplp/context/v1/context_pb.js";
import { ContextService } from "../../../gen/mplp/context/v1/context_service_pb.js";
import { ContextEventType } from "../../../gen/mplp/context/v1/event_pb.js";
import { ParticipantStatus, ParticipantType, Permission } from "../../../gen/mplp/context/v1/participant_pb.js";
import { AppError } from "../../../src/domain/app-error.js";
import type { Context } from "../../../src/domain/context.js";
import type { Participant } from "../../../src/domain/participant.js";
import { foldStatistics } from "../../../src/domain/statistics.js";
import { contextHandlers, type ContextUseCases } from "../../../src/transport/context-handlers.js";
import type { MethodsOf } from "../../../src/transport/grpc-adapter.js";
import { errorDetails, type PromiseClient } from "../../../src/transport/grpc-client.js";
import { sharedStateHandlers } from "../../../src/transport/shared-state-handlers.js";
import { watchHandler } from "../../../src/transport/watch-stream-handler.js";
import { watchContextHandler } from "../../../src/transport/watch-handler.js";
import { startTestServer, type TestServer } from "../../e2e/support/server.js";

const context: Context = {
  contextId: "4f1c2b7e-9a7d-4c1e-8f00-0a1b2c3d4e5f",
  name: "research",
  description: "",
  type: "COLLABORATIVE",
  status: "ACTIVE",
  lifecycleStage: "PLANNING",
  configuration: {
    maxParticipants: 10,
    maxSessions: 5,
    timeoutMs: 0,
    persistenceLevel: "PERSISTENT",
    isolationLevel: "SHARED",
    autoCleanup: true,
    cleanupDelayMs: 300_000,
  },
  accessControl: { owner: "alice", visibility: "PRIVATE", joinPolicy: "INVITATION_ONLY", defaultRole: "contributor", requiredCapabilities: [], requiredRoles: [] },
  metadata: { tags: [], category: "", priority: "NORMAL", customData: {} },
  participantCount: 0,
  sessionCount: 0,
  revision: 3,
  createdAt: new Date("2024-01-01T00:00:00Z"),
  updatedAt: new Date("2024-01-01T00:00:00Z"),
  lastActivityAt: new Date("2024-01-01T00:00:00Z"),
  expiresAt: null,
  terminatedAt: null,
  compactRevision: 0,
  stateSnapshotRevision: 1,
};

const member: Participant = {
  participantId: "9b2f3c4d-1e2f-4a5b-8c6d-7e8f9a0b1c2d",
  contextId: context.contextId,
  agentId: "bob",
  participantType: "AGENT",
  displayName: "Bob",
  status: "ACTIVE",
  roles: ["admin"],
  capabilities: [],
  metadata: {},
  joinedAt: new Date("2024-01-01T00:00:00Z"),
  lastActivityAt: new Date("2024-01-01T00:00:00Z"),
  leaseExpiresAt: new Date("2024-01-01T00:00:30Z"),
  inactiveSince: null,
};

/** A fake of the use cases that records what each was called with. */
function recordingUseCases() {
  const calls: Array<{ method: string; caller: unknown; input: unknown }> = [];
  const record = (method: string, caller: unknown, input?: unknown) => calls.push({ method, caller, input });
  const useCases: ContextUseCases = {
    async create(caller, input) {
      record("create", caller, input);
      return context;
    },
    async batchCreate(caller, inputs) {
      record("batchCreate", caller, inputs);
      return inputs.map(() => context);
    },
    async get(caller, contextId, view) {
      record("get", caller, { contextId, view });
      return { context, participants: view === "FULL" ? [member] : [] };
    },
    async update(caller, input) {
      record("update", caller, input);
      return context;
    },
    async delete(caller, input) {
      record("delete", caller, input);
      if (input.contextId === "missing") throw AppError.contextNotFound(input.contextId);
    },
    async list(caller, input) {
      record("list", caller, input);
      return { contexts: [context], nextPageToken: "next", totalSize: 7 };
    },
    async transition(caller, input) {
      record("transition", caller, input);
      return { ...context, status: "PAUSED" };
    },
    async statistics(caller) {
      record("statistics", caller);
      return foldStatistics([], new Date("2024-01-01T00:00:00Z"));
    },
    async listEvents(caller, input) {
      record("listEvents", caller, input);
      return {
        events: [
          { contextId: context.contextId, revision: 1, seq: 0, eventId: "e1", type: "CONTEXT_CREATED", actor: "alice", occurredAt: context.createdAt, reason: "", payload: { kind: "context", context } },
        ],
        nextPageToken: "",
      };
    },
  };
  return { useCases, calls, last: () => calls[calls.length - 1] };
}

describe(contextHandlers.name, () => {
  const fake = recordingUseCases();
  let served: TestServer;
  let api: PromiseClient<MethodsOf<typeof ContextService>>;
  const asAlice = { metadata: { "x-principal-id": "alice" } };

  beforeAll(async () => {
    served = await startTestServer({ handlers: { context: contextHandlers(fake.useCases) } });
    api = served.client(ContextService);
  });
  afterAll(async () => {
    await served.close();
  });

  describe("createContext", () => {
    it("returns the created context when the use case creates it, passing the caller and the spec", async () => {
      const deadline = Date.now() + 60_000;
      const response = await api.createContext(
        { context: { name: "research", type: ContextType.PIPELINE, metadata: { tags: ["x"] } }, requestId: "r1" },
        { ...asAlice, deadline },
      );
      expect(response.context?.contextId).toBe(context.contextId);
      expect(response.context?.revision).toBe(3n);
      expect(response.context?.expiresAt).toBeUndefined();
      const call = fake.last();
      expect(call?.method).toBe("create");
      expect(call?.caller).toMatchObject({ principal: "alice", deadline: expect.any(Number) });
      expect(call?.input).toMatchObject({ requestId: "r1", context: { name: "research", type: "PIPELINE", metadata: { tags: ["x"] } } });
    });
  });

  describe("batchCreateContexts", () => {
    it("returns one context per request when the batch succeeds", async () => {
      const response = await api.batchCreateContexts({ requests: [{ context: { name: "a" } }, { context: { name: "b" } }] }, asAlice);
      expect(response.contexts).toHaveLength(2);
      expect((fake.last()?.input as unknown[]).length).toBe(2);
    });
  });

  describe("getContext", () => {
    it("passes the view as a domain literal, and undefined when unset", async () => {
      await api.getContext({ contextId: "c", view: ContextView.FULL });
      expect(fake.last()?.input).toEqual({ contextId: "c", view: "FULL" });
      await api.getContext({ contextId: "c" });
      expect(fake.last()?.input).toEqual({ contextId: "c", view: undefined });
      expect(fake.last()?.caller).toEqual({ principal: "anonymous" });
    });

    it("returns the use case's participants, mapped, when it lists them", async () => {
      const full = await api.getContext({ contextId: "c", view: ContextView.FULL });
      expect(full.participants).toHaveLength(1);
      expect(full.participants[0]).toMatchObject({
        agentId: "bob",
        participantType: ParticipantType.AGENT,
        status: ParticipantStatus.ACTIVE,
        permissions: [Permission.READ, Permission.WRITE, Permission.MANAGE_PARTICIPANTS, Permission.DELETE, Permission.ADMIN],
      });
      expect((await api.getContext({ contextId: "c" })).participants).toEqual([]);
    });
  });

  describe("updateContext", () => {
    it("passes the patch, mask and expected revision as numbers when the client sends them", async () => {
      await api.updateContext({ context: { contextId: "c", name: "renamed" }, updateMask: { paths: ["name"] }, expectedRevision: 3n });
      expect(fake.last()?.input).toMatchObject({ contextId: "c", patch: { name: "renamed" }, updateMask: ["name"], expectedRevision: 3 });
    });
  });

  describe("deleteContext", () => {
    it("returns NOT_FOUND when the use case finds no context", async () => {
      const error = await api.deleteContext({ contextId: "missing", force: true }).catch((e: unknown) => e);
      expect(errorDetails(error)).toMatchObject({ code: grpc.status.NOT_FOUND, reason: "CONTEXT_NOT_FOUND" });
      expect(fake.last()?.input).toEqual({ contextId: "missing", expectedRevision: 0, force: true });
    });
  });

  describe("listContexts", () => {
    it("returns the page and passes the filter as domain literals", async () => {
      const response = await api.listContexts({ pageSize: 5, filter: { status: ContextStatus.ACTIVE, namePrefix: "re" } });
      expect(response.contexts).toHaveLength(1);
      expect(response.nextPageToken).toBe("next");
      expect(response.totalSize).toBe(7);
      expect(fake.last()?.input).toMatchObject({ pageSize: 5, pageToken: "", filter: { status: "ACTIVE", namePrefix: "re", type: undefined } });
    });
  });

  describe("transitionContext", () => {
    it("passes a status target when the oneof holds a status", async () => {
      const response = await api.transitionContext({ contextId: "c", target: { case: "status", value: ContextStatus.PAUSED }, reason: "lunch" });
      expect(response.context?.status).toBe(ContextStatus.PAUSED);
      expect(fake.last()?.input).toEqual({ contextId: "c", target: { kind: "status", status: "PAUSED" }, expectedRevision: 0, reason: "lunch" });
    });

    it("passes a stage target, or undefined when the oneof is unset", async () => {
      await api.transitionContext({ contextId: "c", target: { case: "lifecycleStage", value: LifecycleStage.EXECUTING } });
      expect((fake.last()?.input as { target: unknown }).target).toEqual({ kind: "stage", lifecycleStage: "EXECUTING" });
      await api.transitionContext({ contextId: "c" });
      expect((fake.last()?.input as { target: unknown }).target).toBeUndefined();
    });
  });

  describe("getContextStatistics", () => {
    it("returns zero counts for every status when there are no contexts", async () => {
      const response = await api.getContextStatistics({});
      expect(response.totalContexts).toBe(0n);
      expect(response.countsByStatus).toHaveLength(4);
    });
  });

  describe("listContextEvents", () => {
    it("returns events with their type and MPLP name", async () => {
      const response = await api.listContextEvents({ contextId: "c", startRevision: 1n });
      expect(response.events[0]).toMatchObject({ type: ContextEventType.CONTEXT_CREATED, name: "context.created", revision: 1n });
      expect(fake.last()?.input).toEqual({ contextId: "c", startRevision: 1, pageSize: 0, pageToken: "" });
    });
  });

  describe("the methods it leaves to their own handler files", () => {
    it("handles every ContextService method except UpdateSharedState, GetSharedState, WatchContext and Watch, which the composition root merges in", () => {
      const own = new Set(Object.keys(contextHandlers(fake.useCases)));
      const left = ContextService.methods.map((m) => m.localName).filter((name) => !own.has(name));
      expect(left).toEqual(["updateSharedState", "getSharedState", "watchContext", "watch"]);
      // shared-state-handlers.ts supplies the two state methods, watch-handler.ts WatchContext and watch-stream-handler.ts Watch (src/app.ts merges them).
      const unused = () => Promise.reject(new Error("not called"));
      expect(Object.keys(sharedStateHandlers({ update: unused, get: unused })).sort()).toEqual(["getSharedState", "updateSharedState"]);
      expect(watchContextHandler({ watch: unused, open: unused })).toBeTypeOf("function");
      expect(watchHandler({ watch: unused, open: unused }, { maxPerStream: 1 })).toBeTypeOf("function");
    });

    it("answers UNIMPLEMENTED for them on a server given contextHandlers() alone", async () => {
      const unimplemented = { code: grpc.status.UNIMPLEMENTED };
      expect(errorDetails(await api.getSharedState({ contextId: "c" }).catch((e: unknown) => e))).toMatchObject(unimplemented);
      expect(errorDetails(await api.updateSharedState({ contextId: "c" }).catch((e: unknown) => e))).toMatchObject(unimplemented);
      const watchError = await (async () => {
        for await (const _ of api.watchContext({ contextId: "c" })) break;
      })().catch((e: unknown) => e);
      expect(errorDetails(watchError)).toMatchObject(unimplemented);
    });
  });
});
