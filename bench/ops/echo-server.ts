/**
 * The transport ceiling: a bare grpc-js server answering GetContext under our path with one fixed,
 * pre-encoded GetContextResponse (a context like the seeded ones) — no auth, no database, no
 * logging. The driver runs get-context against it closed loop in the same run; our throughput is
 * quoted as a ratio to it.
 *
 * Run as its own process (`node --import tsx bench/ops/echo-server.ts`); it logs
 * `{"msg":"echo grpc-js serving","port":N}` once it listens on GRPC_PORT (0: any free port).
 */
import { create, toBinary } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import { randomUUID } from "node:crypto";
import { ContextStatus, ContextType } from "../../gen/mplp/context/v1/context_pb.js";
import { GetContextResponseSchema } from "../../gen/mplp/context/v1/context_service_pb.js";
import { ECHO_READY_MESSAGE } from "./echo-ready.js";
import { methodOf } from "./scenario-config.js";

const answer = Buffer.from(
  toBinary(
    GetContextResponseSchema,
    create(GetContextResponseSchema, {
      context: {
        contextId: randomUUID(),
        name: "seed-1-1",
        description: "seeded by the benchmark",
        type: ContextType.COLLABORATIVE,
        status: ContextStatus.ACTIVE,
        configuration: { maxParticipants: 10 },
        accessControl: { owner: "bench" },
        participantCount: 10,
        revision: 11n,
        createdAt: timestampNow(),
        updatedAt: timestampNow(),
        lastActivityAt: timestampNow(),
      },
    }),
  ),
);

const identity = (bytes: Buffer): Buffer => bytes;
const { path } = methodOf("mplp.context.v1.ContextService.GetContext");
const server = new grpc.Server();
server.addService(
  { getContext: { path, requestStream: false, responseStream: false, requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity } } as grpc.ServiceDefinition,
  { getContext: (_call: unknown, callback: grpc.sendUnaryData<Buffer>) => callback(null, answer) } as grpc.UntypedServiceImplementation,
);
server.bindAsync(`127.0.0.1:${process.env["GRPC_PORT"] ?? "0"}`, grpc.ServerCredentials.createInsecure(), (error, port) => {
  if (error) {
    console.error(error);
    process.exit(1);
  }
  console.log(JSON.stringify({ msg: ECHO_READY_MESSAGE, port }));
});
const stop = (): void => {
  server.forceShutdown();
  process.exit(0);
};
process.once("SIGTERM", stop);
process.once("SIGINT", stop);
