/**
 * A child process of the driver (active-contexts.ts) that makes contexts "active" and keeps them so:
 * per context, a KeepAlive stream of its participant (one renewal sent, the stream then held open)
 * and a WatchContext stream (snapshot first, then held open), both as the participant's agent
 * (`x-principal-id`), so no principal holds more than one watch. Streams are spread over channels of
 * their own (one HTTP/2 connection each) holding at most `streamsPerChannel`, under the server's
 * GRPC_MAX_CONCURRENT_STREAMS. Commands and replies go over the IPC channel (process.send).
 */
import { create, fromBinary, toBinary, type DescMessage, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { WatchContextResponseSchema } from "../../gen/mplp/context/v1/context_service_pb.js";
import { KeepAliveRequestSchema, KeepAliveResponseSchema, ParticipantService } from "../../gen/mplp/context/v1/participant_service_pb.js";
import { newChannel, serializeWatchRequest, statusName, WATCH_PATH } from "../fanout/grpc-paths.js";
import { OpenFailure, openTimer } from "../fanout/stream-open.js";

/** One active context to open: the context, its participant, and the participant's agent. */
export interface ActiveItem {
  readonly contextId: string;
  readonly participantId: string;
  readonly agentId: string;
}

export type HolderCommand =
  | { readonly kind: "open"; readonly address: string; readonly items: readonly ActiveItem[]; readonly streamsPerChannel: number; readonly concurrency: number }
  | { readonly kind: "count" }
  | { readonly kind: "close" };

export interface HolderOpened {
  readonly kind: "opened";
  /** Contexts whose two streams both opened. */
  readonly opened: number;
  /** Streams that failed to open, by status name. */
  readonly failedByCode: Record<string, number>;
  readonly seconds: number;
}

export interface HolderCount {
  readonly kind: "count";
  /** Streams still open. */
  readonly open: number;
  /** Streams that ended after opening, by status name. */
  readonly endedByCode: Record<string, number>;
}

const KEEPALIVE_PATH = `/${ParticipantService.typeName}/${ParticipantService.method.keepAlive.name}`;

const serializer =
  <D extends DescMessage>(schema: D) =>
  (message: MessageInitShape<D>): Buffer => {
    const bytes = toBinary(schema, create(schema, message));
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  };
const deserializer =
  <D extends DescMessage>(schema: D) =>
  (bytes: Buffer): MessageShape<D> =>
    fromBinary(schema, bytes);

const increment = (counts: Record<string, number>, key: string): void => {
  counts[key] = (counts[key] ?? 0) + 1;
};

const channels: grpc.Client[] = [];
const calls = new Set<grpc.ClientReadableStream<unknown> | grpc.ClientDuplexStream<unknown, unknown>>();
const endedByCode: Record<string, number> = {};
let closing = false;

function metadataFor(agentId: string): grpc.Metadata {
  const metadata = new grpc.Metadata();
  metadata.set("x-principal-id", agentId);
  return metadata;
}

/** Resolves on the stream's first message (so it is registered and live on the server); rejects if it ends first. */
function held(call: grpc.ClientReadableStream<unknown> | grpc.ClientDuplexStream<unknown, unknown>): Promise<void> {
  calls.add(call);
  return new Promise<void>((resolve, reject) => {
    let open = false;
    const timer = openTimer(call, reject);
    call.on("data", () => {
      if (open) return;
      open = true;
      clearTimeout(timer);
      resolve();
    });
    call.on("error", (error: grpc.ServiceError) => {
      clearTimeout(timer);
      calls.delete(call);
      if (!open) reject(new OpenFailure(statusName(error.code)));
      else if (!closing) increment(endedByCode, statusName(error.code));
    });
    call.on("end", () => {
      calls.delete(call);
      if (open && !closing) increment(endedByCode, "OK");
    });
  });
}

function openKeepAlive(channel: grpc.Client, item: ActiveItem): Promise<void> {
  const call = channel.makeBidiStreamRequest(KEEPALIVE_PATH, serializer(KeepAliveRequestSchema), deserializer(KeepAliveResponseSchema), metadataFor(item.agentId), {});
  const opened = held(call);
  call.write({ contextId: item.contextId, participantId: item.participantId });
  return opened;
}

function openWatch(channel: grpc.Client, item: ActiveItem): Promise<void> {
  const call = channel.makeServerStreamRequest(
    WATCH_PATH,
    serializeWatchRequest,
    deserializer(WatchContextResponseSchema),
    { contextId: item.contextId, sendSnapshot: true },
    metadataFor(item.agentId),
    {},
  );
  return held(call);
}

async function open(command: Extract<HolderCommand, { kind: "open" }>): Promise<HolderOpened> {
  const started = Date.now();
  // Two streams per context: a channel takes the streams of streamsPerChannel / 2 contexts.
  const perChannel = Math.max(1, Math.floor(command.streamsPerChannel / 2));
  const jobs: Array<{ channel: grpc.Client; item: ActiveItem }> = [];
  for (let i = 0; i < command.items.length; i += perChannel) {
    const channel = newChannel(command.address);
    channels.push(channel);
    for (const item of command.items.slice(i, i + perChannel)) jobs.push({ channel, item });
  }
  const failedByCode: Record<string, number> = {};
  let opened = 0;
  let next = 0;
  const lane = async (): Promise<void> => {
    for (let job = jobs[next++]; job !== undefined; job = jobs[next++]) {
      const results = await Promise.allSettled([openKeepAlive(job.channel, job.item), openWatch(job.channel, job.item)]);
      for (const r of results) if (r.status === "rejected") increment(failedByCode, r.reason instanceof OpenFailure ? r.reason.code : "UNKNOWN");
      if (results.every((r) => r.status === "fulfilled")) opened++;
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, command.concurrency) }, lane));
  return { kind: "opened", opened, failedByCode, seconds: (Date.now() - started) / 1000 };
}

function close(): void {
  closing = true;
  for (const call of calls) call.cancel();
  calls.clear();
  for (const channel of channels) channel.close();
}

process.on("message", (command: HolderCommand) => {
  const reply = (value: HolderOpened | HolderCount | { kind: "closed" }): void => {
    process.send?.(value);
  };
  switch (command.kind) {
    case "open":
      open(command).then(reply, (error: unknown) => {
        console.error(error);
        process.exit(1);
      });
      break;
    case "count":
      reply({ kind: "count", open: calls.size, endedByCode: { ...endedByCode } });
      break;
    case "close":
      close();
      reply({ kind: "closed" });
      setTimeout(() => process.exit(0), 100);
      break;
  }
});
// The driver going away (Ctrl-C, a crash) takes this process with it.
process.on("disconnect", () => {
  close();
  process.exit(0);
});
