import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { batchWrites } from "../../../src/transport/batched-writes.js";

const identity = (bytes: Buffer): Buffer => bytes;
const MESSAGES = 500;

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
const seen = { batched: false, sendMessages: 0, writevs: 0 };

beforeAll(async () => {
  server = new grpc.Server();
  server.addService(definition, {
    Burst: (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
      const batched = call.request.toString() === "batched";
      // Counts what the stream hands the call, and in how many batches.
      type Writev = (chunks: unknown[], cb: () => void) => void;
      const internals = call as unknown as { call: { sendMessage: (m: unknown, cb: () => void) => void }; _writev: Writev };
      const sendMessage = internals.call.sendMessage.bind(internals.call);
      internals.call.sendMessage = (message, callback) => {
        seen.sendMessages++;
        sendMessage(message, callback);
      };
      if (batched) {
        seen.batched = batchWrites(call);
        const writev = internals._writev;
        internals._writev = (chunks, cb) => {
          seen.writevs++;
          writev(chunks, cb);
        };
      }
      for (let i = 0; i < MESSAGES; i++) call.write(Buffer.from(String(i)));
      call.end();
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, p) => (error ? reject(error) : resolve(p))),
  );
  client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
});

afterAll(() => {
  client.close();
  server.forceShutdown();
});

async function burst(mode: string): Promise<string[]> {
  const stream = client.makeServerStreamRequest("/test.Burst/Burst", identity, identity, Buffer.from(mode));
  const received: string[] = [];
  for await (const message of stream as AsyncIterable<Buffer>) received.push(message.toString());
  return received;
}

describe(batchWrites.name, () => {
  it("sends every message once and in order, the queued ones in batches", async () => {
    Object.assign(seen, { batched: false, sendMessages: 0, writevs: 0 });
    const received = await burst("batched");
    expect(seen.batched).toBe(true);
    expect(received).toEqual(Array.from({ length: MESSAGES }, (_, i) => String(i)));
    expect(seen.sendMessages).toBe(MESSAGES);
    // The first message goes alone; the rest queue behind it and go down in few batches (one per
    // round of the high-water mark at most), not one by one.
    expect(seen.writevs).toBeGreaterThan(0);
    expect(seen.writevs).toBeLessThan(MESSAGES / 10);
  });

  it("leaves a stream that has batching already as it is", async () => {
    const stream = { call: { sendMessage: () => {} }, _writev: () => {} };
    expect(batchWrites(stream)).toBe(false);
    expect(batchWrites({})).toBe(false);
  });

  it("writes the same messages unbatched (grpc-js's own path), for comparison", async () => {
    Object.assign(seen, { batched: false, sendMessages: 0, writevs: 0 });
    expect(await burst("plain")).toEqual(Array.from({ length: MESSAGES }, (_, i) => String(i)));
    expect(seen.writevs).toBe(0);
  });
});
