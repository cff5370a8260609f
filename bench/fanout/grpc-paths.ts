/**
 * The two methods the benchmark drives, as raw grpc-js paths and codecs. Both our server and the
 * bare baseline serve them under the same path with the same messages, so one client drives both.
 */
import { create, fromBinary, toBinary, type DescMessage, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import {
  ContextService,
  UpdateSharedStateRequestSchema,
  UpdateSharedStateResponseSchema,
  WatchContextRequestSchema,
  WatchContextResponseSchema,
  WatchRequestSchema,
  WatchResponseSchema,
  type WatchContextResponse,
  type WatchResponse,
} from "../../gen/mplp/context/v1/context_service_pb.js";

export const WATCH_PATH = `/${ContextService.typeName}/${ContextService.method.watchContext.name}`;
/** Watch: many watches on one bidirectional stream. */
export const WATCH_MANY_PATH = `/${ContextService.typeName}/${ContextService.method.watch.name}`;
export const UPDATE_STATE_PATH = `/${ContextService.typeName}/${ContextService.method.updateSharedState.name}`;

function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export const serializeWatchRequest = (m: MessageInitShape<typeof WatchContextRequestSchema>): Buffer =>
  toBuffer(toBinary(WatchContextRequestSchema, create(WatchContextRequestSchema, m)));
export const deserializeWatchRequest = (b: Buffer) => fromBinary(WatchContextRequestSchema, b);
export const serializeWatchResponse = (m: MessageInitShape<typeof WatchContextResponseSchema>): Buffer =>
  toBuffer(toBinary(WatchContextResponseSchema, create(WatchContextResponseSchema, m)));
export const serializeWatchManyRequest = (m: MessageInitShape<typeof WatchRequestSchema>): Buffer =>
  toBuffer(toBinary(WatchRequestSchema, create(WatchRequestSchema, m)));
export const serializeUpdateRequest = (m: MessageInitShape<typeof UpdateSharedStateRequestSchema>): Buffer =>
  toBuffer(toBinary(UpdateSharedStateRequestSchema, create(UpdateSharedStateRequestSchema, m)));
export const deserializeUpdateRequest = (b: Buffer) => fromBinary(UpdateSharedStateRequestSchema, b);
export const serializeUpdateResponse = (m: MessageInitShape<typeof UpdateSharedStateResponseSchema>): Buffer =>
  toBuffer(toBinary(UpdateSharedStateResponseSchema, create(UpdateSharedStateResponseSchema, m)));
export const deserializeUpdateResponse = (b: Buffer) => fromBinary(UpdateSharedStateResponseSchema, b);

/** A message with the time it arrived and its size, taken before it was decoded. */
export interface Timed<M> {
  readonly receivedMs: number;
  readonly bytes: number;
  readonly message: M;
}

/** A WatchContext stream's message, timed. */
export type TimedWatchResponse = Timed<WatchContextResponse>;
/** A Watch stream's message, timed. */
export type TimedWatchManyResponse = Timed<WatchResponse>;

/** A deserializer of `schema` that notes when the bytes arrived (grpc-js calls it as each message comes in). */
function timedDeserializer<D extends DescMessage>(schema: D, now: () => number): (b: Buffer) => Timed<MessageShape<D>> {
  return (b) => ({ receivedMs: now(), bytes: b.length, message: fromBinary(schema, b) });
}

export const timedWatchDeserializer = (now: () => number) => timedDeserializer(WatchContextResponseSchema, now);
export const timedWatchManyDeserializer = (now: () => number) => timedDeserializer(WatchResponseSchema, now);

/**
 * A channel of its own: grpc-js shares one subchannel (TCP connection) among clients with equal
 * options unless told to use a local pool, and the point of several channels is several connections.
 */
export function newChannel(address: string): grpc.Client {
  return new grpc.Client(address, grpc.credentials.createInsecure(), { "grpc.use_local_subchannel_pool": 1 });
}

/** `UNAVAILABLE` for 14, and so on. */
export function statusName(code: number): string {
  return grpc.status[code] ?? `CODE_${code}`;
}
