import { create, fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { protoPath as healthProtoPath } from "grpc-health-check";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { Writable } from "node:stream";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ContextService,
  CreateContextResponseSchema,
  GetContextResponseSchema,
  WatchContextResponseSchema,
} from "../../../gen/mplp/context/v1/context_service_pb.js";
import { HeartbeatResponseSchema, ParticipantService } from "../../../gen/mplp/context/v1/participant_service_pb.js";
import { AppError } from "../../../src/domain/app-error.js";
import type { CallContext } from "../../../src/transport/call-context.js";
import type { ContextServiceHandlers } from "../../../src/transport/context-handlers.js";
import { errorDetails } from "../../../src/transport/grpc-client.js";
import { createGrpcServer, type ParticipantServiceHandlers } from "../../../src/transport/server.js";
import { startTestServer, type TestServer } from "../../e2e/support/server.js";

/** A promise with its resolver outside, to await events instead of sleeping. */
function deferred<T = void>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

function aborted(signal: AbortSignal): Promise<unknown> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve(signal.reason);
    else signal.addEventListener("abort", () => resolve(signal.reason), { once: true });
  });
}

/** Log lines the server writes, parsed. */
function capturingLogger() {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      callback();
    },
  });
  return { logger: pino({ level: "info" }, stream), lines };
}

/** What the fake handlers saw, for tests that check the call context. */
const seen = {
  hanging: deferred<CallContext>(),
  hangAborted: deferred<unknown>(),
  gated: deferred<CallContext>(),
  gate: deferred(),
  streamAborted: deferred<unknown>(),
};

/** A tiny fake handler set: behaviour picked by the request, no service behind it. */
const handlers: ContextServiceHandlers = {
  async getContext(request, ctx) {
    return create(GetContextResponseSchema, { context: { contextId: request.contextId, name: ctx.principal, description: ctx.requestId } });
  },
  async createContext(request, ctx) {
    if (request.requestId === "hang") {
      seen.hanging.resolve(ctx);
      seen.hangAborted.resolve(await aborted(ctx.signal));
      throw ctx.signal.reason;
    }
    if (request.requestId === "gate") {
      seen.gated.resolve(ctx);
      await seen.gate.promise;
    }
    return create(CreateContextResponseSchema, { context: { name: request.context?.name ?? "" } });
  },
  async deleteContext(request) {
    throw AppError.contextNotFound(request.contextId);
  },
  async listContexts() {
    throw new Error("connection to 10.0.0.3:5432 refused", { cause: new Error("ECONNREFUSED") });
  },
  async watchContext(request, ctx, send) {
    if (request.startRevision === 0n) {
      for (let revision = 1n; revision <= 3n; revision++) {
        await send(create(WatchContextResponseSchema, { response: { case: "progress", value: { revision } } }));
      }
      return;
    }
    // Sends until the client goes away; send() rejects once the call is cancelled.
    try {
      for (let revision = 1n; ; revision++) {
        await send(create(WatchContextResponseSchema, { response: { case: "progress", value: { revision } } }));
      }
    } finally {
      seen.streamAborted.resolve(ctx.signal.reason);
    }
  },
};

const reflectionProtoDir = join(dirname(createRequire(import.meta.url).resolve("@grpc/reflection")), "../proto");

function loadClientConstructor(file: string, service: string): grpc.ServiceClientConstructor {
  const definition = loadSync(file, { keepCase: true, enums: String, longs: String, defaults: true, oneofs: true });
  const loaded = grpc.loadPackageDefinition(definition);
  return service.split(".").reduce<unknown>((at, part) => (at as Record<string, unknown>)[part], loaded) as grpc.ServiceClientConstructor;
}

describe(createGrpcServer.name, () => {
  let served: TestServer;
  const log = capturingLogger();

  beforeAll(async () => {
    served = await startTestServer({ handlers: { context: handlers }, logger: log.logger });
  });
  afterAll(async () => {
    await served.close();
  });

  describe("unary calls", () => {
    it("returns the principal and request id from the metadata, and echoes the request id, when the client names them", async () => {
      const client = served.client(ContextService);
      const headers = deferred<Readonly<Record<string, string>>>();
      const response = await client.getContext(
        { contextId: "c1" },
        { metadata: { "x-principal-id": "alice", "x-request-id": "req-1" }, onHeaders: headers.resolve },
      );
      expect(response.context?.name).toBe("alice");
      expect(response.context?.description).toBe("req-1");
      expect((await headers.promise)["x-request-id"]).toBe("req-1");
    });

    it("returns anonymous and a fresh request id when the client names neither", async () => {
      const headers = deferred<Readonly<Record<string, string>>>();
      const response = await served.client(ContextService).getContext({ contextId: "c1" }, { onHeaders: headers.resolve });
      expect(response.context?.name).toBe("anonymous");
      expect(response.context?.description).toMatch(/^[0-9a-f-]{36}$/);
      expect((await headers.promise)["x-request-id"]).toBe(response.context?.description);
    });

    it("returns INVALID_ARGUMENT naming x-principal-id when the principal is too long", async () => {
      const error = await served
        .client(ContextService)
        .getContext({ contextId: "c1" }, { metadata: { "x-principal-id": "a".repeat(256) } })
        .catch((e: unknown) => e);
      const details = errorDetails(error);
      expect(details.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(details.reason).toBe("VALIDATION_ERROR");
      expect(details.violations.map((v) => v.field)).toEqual(["x-principal-id"]);
    });

    it("returns UNIMPLEMENTED when the method has no handler", async () => {
      const error = await served.client(ContextService).transitionContext({ contextId: "c1" }).catch((e: unknown) => e);
      expect(errorDetails(error)).toMatchObject({
        code: grpc.status.UNIMPLEMENTED,
        message: "TransitionContext is not implemented yet",
      });
    });

    it("returns UNIMPLEMENTED for every ParticipantService method when no participant handlers are given", async () => {
      const client = served.client(ParticipantService) as unknown as Record<string, (request: unknown) => unknown>;
      for (const method of ParticipantService.methods) {
        const call = client[method.localName];
        if (call === undefined) throw new Error(`client has no ${method.localName}`);
        const error =
          method.methodKind === "bidi_streaming"
            ? await (async () => {
                for await (const _ of call((async function* () {})()) as AsyncIterable<unknown>) break;
              })().catch((e: unknown) => e)
            : await (call({}) as Promise<unknown>).catch((e: unknown) => e);
        expect(errorDetails(error), method.name).toMatchObject({ code: grpc.status.UNIMPLEMENTED, message: `${method.name} is not implemented yet` });
      }
    });

    it("returns UNIMPLEMENTED for a ParticipantService method its handlers leave out", async () => {
      const participant: ParticipantServiceHandlers = {
        async heartbeat() {
          return create(HeartbeatResponseSchema);
        },
      };
      const partial = await startTestServer({ handlers: { context: {}, participant } });
      try {
        const client = partial.client(ParticipantService);
        expect((await client.heartbeat({})).$typeName).toBe("mplp.context.v1.HeartbeatResponse");
        const error = await client.removeParticipant({}).catch((e: unknown) => e);
        expect(errorDetails(error)).toMatchObject({ code: grpc.status.UNIMPLEMENTED, message: "RemoveParticipant is not implemented yet" });
      } finally {
        await partial.close();
      }
    });

    it("returns INVALID_ARGUMENT with a BadRequest naming the request when the bytes do not decode", async () => {
      const raw = new grpc.Client(served.address, grpc.credentials.createInsecure());
      const identity = (b: Buffer): Buffer => b;
      const error = await new Promise<unknown>((resolve) => {
        raw.makeUnaryRequest(
          "/mplp.context.v1.ContextService/GetContext",
          identity,
          identity,
          Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f]),
          (err) => resolve(err),
        );
      });
      raw.close();
      const details = errorDetails(error);
      expect(details.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(details.reason).toBe("VALIDATION_ERROR");
      expect(details.violations).toEqual([{ field: "request", description: "is not a valid mplp.context.v1.GetContextRequest message" }]);
    });

    it("returns NOT_FOUND with ErrorInfo when the handler throws an AppError", async () => {
      const error = await served.client(ContextService).deleteContext({ contextId: "c9" }).catch((e: unknown) => e);
      expect(errorDetails(error)).toMatchObject({
        code: grpc.status.NOT_FOUND,
        reason: "CONTEXT_NOT_FOUND",
        domain: "mplp.context.v1",
        metadata: { context_id: "c9" },
      });
    });

    it("echoes the request id in the headers of a call that fails too", async () => {
      const headers = deferred<Readonly<Record<string, string>>>();
      const error = await served
        .client(ContextService)
        .deleteContext({ contextId: "c9" }, { metadata: { "x-request-id": "req-failed" }, onHeaders: headers.resolve })
        .catch((e: unknown) => e);
      expect(errorDetails(error).code).toBe(grpc.status.NOT_FOUND);
      expect((await headers.promise)["x-request-id"]).toBe("req-failed");
    });

    it("returns INTERNAL \"internal error\" and logs the cause chain when the handler throws a plain Error", async () => {
      const error = await served
        .client(ContextService)
        .listContexts({}, { metadata: { "x-request-id": "req-internal" } })
        .catch((e: unknown) => e);
      const details = errorDetails(error);
      expect(details).toMatchObject({ code: grpc.status.INTERNAL, message: "internal error", reason: "INTERNAL_ERROR" });
      expect(JSON.stringify(details)).not.toContain("10.0.0.3");
      const line = log.lines.find((l) => l["requestId"] === "req-internal");
      expect(line).toMatchObject({ level: 50, code: "INTERNAL", method: "/mplp.context.v1.ContextService/ListContexts" });
      const chain = line?.["err"] as Array<{ message: string; stack?: string }>;
      expect(chain.map((e) => e.message)).toEqual(["connection to 10.0.0.3:5432 refused", "ECONNREFUSED"]);
      expect(chain[0]?.stack).toContain("connection to 10.0.0.3:5432 refused");
    });

    it("logs one info line with method, code, duration, principal, request id and peer when a call succeeds", async () => {
      await served.client(ContextService).getContext({}, { metadata: { "x-request-id": "req-log", "x-principal-id": "bob" } });
      const lines = log.lines.filter((l) => l["requestId"] === "req-log");
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatchObject({
        level: 30,
        method: "/mplp.context.v1.ContextService/GetContext",
        code: "OK",
        principal: "bob",
        peer: expect.stringContaining("127.0.0.1"),
      });
      expect(typeof lines[0]?.["durationMs"]).toBe("number");
    });

    it("returns DEADLINE_EXCEEDED and aborts the handler's signal when the deadline passes", async () => {
      const error = await served
        .client(ContextService)
        .createContext({ requestId: "hang" }, { deadline: Date.now() + 300 })
        .catch((e: unknown) => e);
      expect(errorDetails(error).code).toBe(grpc.status.DEADLINE_EXCEEDED);
      const ctx = await seen.hanging.promise;
      expect(ctx.deadline).toBeTypeOf("number");
      expect(await seen.hangAborted.promise).toMatchObject({ name: "TimeoutError" });
    });

    it("returns CANCELLED when the client's signal aborts", async () => {
      const controller = new AbortController();
      controller.abort();
      const error = await served.client(ContextService).getContext({}, { signal: controller.signal }).catch((e: unknown) => e);
      expect(errorDetails(error).code).toBe(grpc.status.CANCELLED);
    });
  });

  describe("server streaming", () => {
    it("returns every message the handler sends, then ends, when the handler returns", async () => {
      const revisions: bigint[] = [];
      for await (const message of served.client(ContextService).watchContext({ contextId: "c1" })) {
        if (message.response.case === "progress") revisions.push(message.response.value.revision);
      }
      expect(revisions).toEqual([1n, 2n, 3n]);
    });

    it("aborts the handler's sends when the consumer breaks out", async () => {
      for await (const message of served.client(ContextService).watchContext({ contextId: "c1", startRevision: 1n })) {
        expect(message.response.case).toBe("progress");
        break;
      }
      expect(await seen.streamAborted.promise).toMatchObject({ name: "AbortError" });
    });
  });

  describe("health", () => {
    it("returns SERVING for the server and each service once the server says ready, NOT_SERVING after", async () => {
      const Health = loadClientConstructor(healthProtoPath, "grpc.health.v1.Health");
      const health = new Health(served.address, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
        check(req: { service: string }, cb: (err: grpc.ServiceError | null, res?: { status: string }) => void): void;
      };
      const check = (service: string) =>
        new Promise<string | undefined>((resolve, reject) =>
          health.check({ service }, (err, res) => (err ? reject(err) : resolve(res?.status))),
        );
      try {
        expect(await check("")).toBe("SERVING");
        expect(await check("mplp.context.v1.ContextService")).toBe("SERVING");
        expect(await check("mplp.context.v1.ParticipantService")).toBe("SERVING");
        served.server.setServing(false);
        expect(await check("")).toBe("NOT_SERVING");
        expect(await check("mplp.context.v1.ContextService")).toBe("NOT_SERVING");
      } finally {
        served.server.setServing(true);
        health.close();
      }
    });
  });

  describe("reflection", () => {
    it.each(["v1", "v1alpha"])("lists both mplp services and describes ContextService on %s", async (version) => {
      const Reflection = loadClientConstructor(
        join(reflectionProtoDir, `grpc/reflection/${version}/reflection.proto`),
        `grpc.reflection.${version}.ServerReflection`,
      );
      const client = new Reflection(served.address, grpc.credentials.createInsecure());
      type Response = {
        list_services_response?: { service: Array<{ name: string }> };
        file_descriptor_response?: { file_descriptor_proto: number[][] };
      };
      const call = (client as unknown as { ServerReflectionInfo(): grpc.ClientDuplexStream<object, Response> }).ServerReflectionInfo();
      const answers: Response[] = [];
      const done = new Promise<void>((resolve, reject) => {
        call.on("data", (r: Response) => answers.push(r));
        call.on("end", resolve);
        call.on("error", reject);
      });
      call.write({ list_services: "*" });
      call.write({ file_containing_symbol: "mplp.context.v1.ContextService" });
      call.end();
      await done;
      client.close();
      const services = answers[0]?.list_services_response?.service.map((s) => s.name);
      expect(services).toEqual(
        expect.arrayContaining(["mplp.context.v1.ContextService", "mplp.context.v1.ParticipantService", "grpc.health.v1.Health"]),
      );
      const files = (answers[1]?.file_descriptor_response?.file_descriptor_proto ?? []).map(
        (bytes) => fromBinary(FileDescriptorProtoSchema, Uint8Array.from(bytes)).name,
      );
      expect(files).toContain("mplp/context/v1/context_service.proto");
    });
  });
});

describe("GrpcServer", () => {
  describe("shutdown", () => {
    it("returns after an in-flight call finishes when the call ends within the grace period", async () => {
      const served = await startTestServer({ handlers: { context: handlers }, env: { SHUTDOWN_GRACE_MS: "60000" } });
      const client = served.client(ContextService);
      const inFlight = client.createContext({ requestId: "gate", context: { name: "drained" } });
      await seen.gated.promise;
      const stopped = served.server.shutdown();
      seen.gate.resolve();
      expect((await inFlight).context?.name).toBe("drained");
      await stopped;
      const after = await client.getContext({}, { deadline: Date.now() + 5_000 }).catch((e: unknown) => e);
      expect(errorDetails(after).code).toBe(grpc.status.UNAVAILABLE);
      await served.close();
    });

    it("cuts the call off and aborts its signal when it outlives the grace period", async () => {
      seen.hanging = deferred<CallContext>();
      seen.hangAborted = deferred<unknown>();
      const served = await startTestServer({ handlers: { context: handlers }, env: { SHUTDOWN_GRACE_MS: "0" } });
      const inFlight = served.client(ContextService).createContext({ requestId: "hang" }).catch((e: unknown) => e);
      await seen.hanging.promise;
      await served.server.shutdown();
      expect(errorDetails(await inFlight).code).not.toBe(grpc.status.OK);
      expect(await seen.hangAborted.promise).toMatchObject({ name: "AbortError" });
      await served.close();
    });
  });
});
