import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ContextService, CreateContextResponseSchema, GetContextResponseSchema } from "../../../gen/mplp/context/v1/context_service_pb.js";
import { ParticipantStatus } from "../../../gen/mplp/context/v1/participant_pb.js";
import { KeepAliveResponseSchema, ParticipantService } from "../../../gen/mplp/context/v1/participant_service_pb.js";
import type { ContextServiceHandlers } from "../../../src/transport/context-handlers.js";
import { serviceDefinition } from "../../../src/transport/grpc-adapter.js";
import { errorDetails } from "../../../src/transport/grpc-client.js";
import type { ParticipantServiceHandlers } from "../../../src/transport/server.js";
import { startTestServer, type TestServer } from "../../e2e/support/server.js";

function deferred<T>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

const keepAliveEnded = { value: deferred<unknown>() };

/** Echoes each KeepAlive request as ACTIVE; records how the stream ended. */
const participant: ParticipantServiceHandlers = {
  async keepAlive(requests, ctx, send) {
    try {
      for await (const request of requests) {
        await send(create(KeepAliveResponseSchema, { participantId: request.participantId, status: ParticipantStatus.ACTIVE }));
      }
      keepAliveEnded.value.resolve("completed");
    } catch (error) {
      keepAliveEnded.value.resolve(ctx.signal.aborted ? "aborted" : error);
      throw error;
    }
  },
};

describe(serviceDefinition.name, () => {
  describe("paths and stream flags", () => {
    it("returns /<typeName>/<Method> and the stream flags of each method kind", () => {
      const definition = serviceDefinition(ParticipantService);
      expect(definition["KeepAlive"]).toMatchObject({
        path: "/mplp.context.v1.ParticipantService/KeepAlive",
        requestStream: true,
        responseStream: true,
      });
      expect(serviceDefinition(ContextService)["WatchContext"]).toMatchObject({ requestStream: false, responseStream: true });
      expect(serviceDefinition(ContextService)["GetContext"]).toMatchObject({ requestStream: false, responseStream: false });
    });
  });

  describe("handler types", () => {
    it("rejects a handler returning another method's response at compile time", () => {
      const handlers: ContextServiceHandlers = {
        // @ts-expect-error GetContext must resolve to a GetContextResponse, not a CreateContextResponse.
        async getContext() {
          return create(CreateContextResponseSchema);
        },
        async createContext() {
          return create(CreateContextResponseSchema);
        },
      };
      expect(Object.keys(handlers)).toEqual(["getContext", "createContext"]);
      expect(create(GetContextResponseSchema).$typeName).toBe("mplp.context.v1.GetContextResponse");
    });
  });
});

describe("bidi streaming", () => {
  let served: TestServer;
  beforeAll(async () => {
    served = await startTestServer({ handlers: { context: {}, participant } });
  });
  afterAll(async () => {
    await served.close();
  });

  describe("keepAlive", () => {
    it("returns one response per request and ends when the client's requests end", async () => {
      keepAliveEnded.value = deferred();
      async function* requests() {
        yield { contextId: "c", participantId: "p1" };
        yield { contextId: "c", participantId: "p2" };
      }
      const seen: string[] = [];
      for await (const response of served.client(ParticipantService).keepAlive(requests())) seen.push(response.participantId);
      expect(seen).toEqual(["p1", "p2"]);
      expect(await keepAliveEnded.value.promise).toBe("completed");
    });

    it("returns CANCELLED and ends the handler's stream when the request iterable throws", async () => {
      keepAliveEnded.value = deferred();
      const firstAnswered = deferred<void>();
      async function* requests() {
        yield { contextId: "c", participantId: "p1" };
        await firstAnswered.promise;
        throw new Error("agent crashed");
      }
      const error = await (async () => {
        for await (const _ of served.client(ParticipantService).keepAlive(requests())) firstAnswered.resolve();
      })().catch((e: unknown) => e);
      expect(errorDetails(error).code).toBe(grpc.status.CANCELLED);
      // The server stops serving the stream. grpc-js may report the reset as the end of the
      // requests just before it reports the cancellation, so the handler sees either.
      expect(["completed", "aborted"]).toContain(await keepAliveEnded.value.promise);
    });
  });
});
