import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { batchWrites, framed } from "../../../src/transport/batched-writes.js";

const identity = (bytes: Buffer): Buffer => bytes;
const MESSAGES = 500;
/** The servers' send limit: the "oversize" burst writes one message past it. */
const MAX_SEND = 64 * 1024;

/** One server-streaming method that writes MESSAGES numbered messages at once, batched or not. */
const definition: grpc.ServiceDefinition = {
  Burst: {
    path: "/test.Burst/Burst",
    requestStream: false,
    responseStream: true,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
};

let server: grpc.Server;
let client: grpc.Client;
const seen = { batched: false, sendMessages: 0, writevs: 0, streamWrites: 0 };

type Writev = (chunks: unknown[], cb: () => void) => void;
interface Internals {
  call: { sendMessage: (m: unknown, cb: () => void) => void; stream: { write: (data: Buffer, cb: () => void) => boolean } };
  _writev: Writev;
}

beforeAll(async () => {
  server = new grpc.Server({ "grpc.max_send_message_length": MAX_SEND });
  server.addService(definition, {
    Burst: (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
      const mode = call.request.toString();
      // Counts what the stream hands the call, in how many batches, and the writes to the HTTP/2 stream.
      const internals = call as unknown as Internals;
      const sendMessage = internals.call.sendMessage.bind(internals.call);
      internals.call.sendMessage = (message, callback) => {
        seen.sendMessages++;
        sendMessage(message, callback);
      };
      const h2 = internals.call.stream;
      const write = h2.write.bind(h2);
      h2.write = (data, cb) => {
        seen.streamWrites++;
        return write(data, cb);
      };
      if (mode !== "plain") {
        seen.batched = batchWrites(call);
        const writev = internals._writev;
        internals._writev = (chunks, cb) => {
          seen.writevs++;
          writev(chunks, cb);
        };
      }
      for (let i = 0; i < MESSAGES; i++) call.write(mode === "oversize" && i === 300 ? Buffer.alloc(MAX_SEND + 1) : Buffer.from(String(i)));
      call.end();
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, p) => (error ? reject(error) : resolve(p))),
  );
  client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { "grpc.max_receive_message_length": 4 * MAX_SEND });
});

afterAll(() => {
  client.close();
  server.forceShutdown();
});

async function burst(mode: string): Promise<string[]> {
  Object.assign(seen, { batched: false, sendMessages: 0, writevs: 0, streamWrites: 0 });
  const stream = client.makeServerStreamRequest("/test.Burst/Burst", identity, identity, Buffer.from(mode));
  const received: string[] = [];
  for await (const message of stream as AsyncIterable<Buffer>) received.push(message.toString());
  return received;
}

const numbered = Array.from({ length: MESSAGES }, (_, i) => String(i));

describe(batchWrites.name, () => {
  it("sends every message once and in order, the queued ones framed together in one write each batch", async () => {
    const received = await burst("batched");
    expect(seen.batched).toBe(true);
    expect(received).toEqual(numbered);
    // The first message goes alone, through the call; the rest queue behind it and go down in few
    // batches (one per round of the high-water mark at most), each one write to the HTTP/2 stream.
    expect(seen.writevs).toBeGreaterThan(0);
    expect(seen.writevs).toBeLessThan(MESSAGES / 10);
    expect(seen.sendMessages).toBeLessThan(MESSAGES / 10);
    expect(seen.streamWrites).toBe(seen.sendMessages + seen.writevs);
  });

  it("ends the call with grpc-js's own RESOURCE_EXHAUSTED when a batch holds a message over the send limit", async () => {
    const error = await burst("oversize").catch((e: unknown) => e);
    expect((error as grpc.ServiceError).code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(seen.batched).toBe(true);
  });

  it("leaves a stream that has batching already as it is", async () => {
    const stream = { call: { sendMessage: () => {} }, _writev: () => {} };
    expect(batchWrites(stream)).toBe(false);
    expect(batchWrites({})).toBe(false);
  });

  it("writes the same messages unbatched (grpc-js's own path), for comparison", async () => {
    expect(await burst("plain")).toEqual(numbered);
    expect(seen.writevs).toBe(0);
    expect(seen.sendMessages).toBe(MESSAGES);
    expect(seen.streamWrites).toBe(MESSAGES);
  });
});

describe(framed.name, () => {
  it("frames messages as gRPC does: a zero flag byte and a big-endian length before each", () => {
    const long = Buffer.alloc(70_000, 7);
    const out = framed([Buffer.from("ab"), new Uint8Array(0), long]);
    expect(out.subarray(0, 7)).toEqual(Buffer.from([0, 0, 0, 0, 2, 0x61, 0x62]));
    expect(out.subarray(7, 12)).toEqual(Buffer.from([0, 0, 0, 0, 0]));
    expect(out.subarray(12, 17)).toEqual(Buffer.from([0, 0x00, 0x01, 0x11, 0x70]));
    expect(out.subarray(17)).toEqual(long);
  });
});
