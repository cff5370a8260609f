/**
 * The fan-out baseline: a bare grpc-js server with nothing between a commit and its watchers — no
 * database, no doorbell, no hub. It serves UpdateSharedState and WatchContext under the same paths
 * and messages as ours, so the same writers and watchers drive it and measure it the same way: a
 * commit bumps the context's revision in memory and the WatchContextResponse our server would send
 * (one STATE_CHANGED event carrying the commit's changes) is serialized once and written to every
 * stream of that context. What our server adds on top of this is the cost of being a real service.
 *
 * Run as its own process (`node --import tsx bench/fanout/bare-server.ts`, as the benchmark does);
 * it logs `{"msg":"bare grpc-js serving","port":N}` once it listens on GRPC_PORT (0: any free port).
 */
import { timestampNow } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import { randomUUID } from "node:crypto";
import { ContextEventType } from "../../gen/mplp/context/v1/event_pb.js";
import type { UpdateSharedStateRequest, WatchContextRequest } from "../../gen/mplp/context/v1/context_service_pb.js";
import {
  deserializeUpdateRequest,
  deserializeWatchRequest,
  serializeUpdateResponse,
  serializeWatchResponse,
  UPDATE_STATE_PATH,
  WATCH_PATH,
} from "./grpc-paths.js";
import { BARE_READY_MESSAGE } from "./processes.js";

const identity = (bytes: Buffer): Buffer => bytes;
const streams = new Map<string, Set<grpc.ServerWritableStream<WatchContextRequest, Buffer>>>();
const revisions = new Map<string, number>();

function watch(call: grpc.ServerWritableStream<WatchContextRequest, Buffer>): void {
  const { contextId, sendSnapshot } = call.request;
  let set = streams.get(contextId);
  if (set === undefined) streams.set(contextId, (set = new Set()));
  set.add(call);
  const leave = (): void => {
    set.delete(call);
  };
  call.on("cancelled", leave);
  call.on("error", leave);
  if (sendSnapshot) {
    call.write(serializeWatchResponse({ response: { case: "snapshot", value: { context: { contextId }, revision: BigInt(revisions.get(contextId) ?? 0) } } }));
  }
}

function updateSharedState(call: grpc.ServerUnaryCall<UpdateSharedStateRequest, Buffer>, callback: grpc.sendUnaryData<Buffer>): void {
  const { contextId, changes } = call.request;
  const revision = (revisions.get(contextId) ?? 0) + 1;
  revisions.set(contextId, revision);
  const principal = String(call.metadata.get("x-principal-id")[0] ?? "anonymous");
  const message = serializeWatchResponse({
    response: {
      case: "events",
      value: {
        revision: BigInt(revision),
        events: [
          {
            contextId,
            revision: BigInt(revision),
            eventId: randomUUID(),
            type: ContextEventType.STATE_CHANGED,
            name: "context.state.changed",
            actor: principal,
            occurredAt: timestampNow(),
            payload: { case: "stateChange", value: { changes } },
          },
        ],
      },
    },
  });
  // Written without waiting for drain: the ceiling, not a well-behaved server (watchers here keep up).
  for (const stream of streams.get(contextId) ?? []) stream.write(message);
  callback(null, serializeUpdateResponse({ revision: BigInt(revision) }));
}

const server = new grpc.Server();
server.addService(
  {
    watchContext: {
      path: WATCH_PATH,
      requestStream: false,
      responseStream: true,
      requestSerialize: identity,
      requestDeserialize: deserializeWatchRequest,
      responseSerialize: identity,
      responseDeserialize: identity,
    },
    updateSharedState: {
      path: UPDATE_STATE_PATH,
      requestStream: false,
      responseStream: false,
      requestSerialize: identity,
      requestDeserialize: deserializeUpdateRequest,
      responseSerialize: identity,
      responseDeserialize: identity,
    },
  } as grpc.ServiceDefinition,
  { watchContext: watch, updateSharedState } as grpc.UntypedServiceImplementation,
);
server.bindAsync(`127.0.0.1:${process.env["GRPC_PORT"] ?? "0"}`, grpc.ServerCredentials.createInsecure(), (error, port) => {
  if (error) {
    console.error(error);
    process.exit(1);
  }
  console.log(JSON.stringify({ msg: BARE_READY_MESSAGE, port }));
});
const stop = (): void => {
  server.forceShutdown();
  process.exit(0);
};
process.once("SIGTERM", stop);
process.once("SIGINT", stop);
