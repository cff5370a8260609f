/**
 * A grpc-js response stream is a Writable with `_write` only: it hands its messages to the call
 * one at a time, and the next waits until the previous one's bytes have gone to the socket — a
 * whole write round (a native immediate, nghttp2, one writev) per message. A revision that 100
 * watches of one Watch stream carry took 100 rounds: with 1,000 watches of one context on 10
 * streams, 9,500 writev calls a second where a WatchContext stream per watch took 120.
 *
 * With `_writev` as well, the messages that queued behind the one in flight go down together. The
 * gRPC framing (a flag byte and a length before each message) does not care where HTTP/2 DATA
 * frames begin, so the batch is framed into one buffer and written to the HTTP/2 stream once:
 * per message, only its serialization and five bytes, where the call's own sendMessage made a
 * buffer, a copy, a trace string and a write through the HTTP/2 stream's Writable each. It does
 * what sendMessage does around that (headers first, the size limit, the message counters); a
 * batch with a message over the size limit, or one that does not serialize, goes one message at a
 * time through sendMessage, which ends the call with grpc-js's own status. The batch is done
 * when its bytes are written, which is when Writable moves on ('drain', `_final` and the status).
 */

import { status } from "@grpc/grpc-js";

/** What the stream's Writable hands `_writev`. */
interface Chunk {
  readonly chunk: unknown;
}

/** The part of grpc-js's server call its response streams write through (grpc-js 1.14, server-call.js). */
interface MessageCall {
  sendMessage(message: unknown, callback: () => void): void;
}

/**
 * The call without interceptors, grpc-js 1.14's BaseServerInterceptingCall (server-interceptors.js):
 * what its sendMessage uses to frame and write a message.
 */
interface FramingCall extends MessageCall {
  readonly stream: { write(data: Buffer, callback: (error?: Error | null) => void): boolean };
  readonly handler: { serialize(value: unknown): Buffer };
  readonly maxSendMessageSize: number;
  readonly callEventTracker?: { addMessageSent(): void } | null;
  checkCancelled(): boolean;
  maybeSendMetadata(): void;
  sendStatus(ending: { code: status; details: string; metadata: null }): void;
}

interface WritableInternals {
  readonly call?: Partial<FramingCall>;
  _writev?: ((chunks: Chunk[], callback: (error?: Error | null) => void) => void) | null;
}

/** The gRPC message prefix: a compressed flag (responses are never compressed here) and the length. */
const PREFIX_BYTES = 5;

function framing(call: Partial<FramingCall>): FramingCall | undefined {
  return typeof call.stream?.write === "function" &&
    typeof call.handler?.serialize === "function" &&
    typeof call.maxSendMessageSize === "number" &&
    typeof call.checkCancelled === "function" &&
    typeof call.maybeSendMetadata === "function" &&
    typeof call.sendStatus === "function"
    ? (call as FramingCall)
    : undefined;
}

/** Each chunk's serialized bytes; undefined when one does not serialize or is over the size limit. */
function serialized(call: FramingCall, chunks: readonly Chunk[]): Buffer[] | undefined {
  const bodies: Buffer[] = [];
  try {
    for (const { chunk } of chunks) {
      const body = call.handler.serialize(chunk);
      if (call.maxSendMessageSize !== -1 && body.byteLength > call.maxSendMessageSize) return undefined;
      bodies.push(body);
    }
  } catch {
    return undefined;
  }
  return bodies;
}

/** The messages as gRPC frames them on the wire, back to back in one buffer. */
export function framed(bodies: readonly Uint8Array[]): Buffer {
  let length = 0;
  for (const body of bodies) length += PREFIX_BYTES + body.byteLength;
  const out = Buffer.allocUnsafe(length);
  let at = 0;
  for (const body of bodies) {
    out[at] = 0;
    out.writeUInt32BE(body.byteLength, at + 1);
    out.set(body, at + PREFIX_BYTES);
    at += PREFIX_BYTES + body.byteLength;
  }
  return out;
}

/**
 * Lets `stream` (a grpc-js ServerWritableStream or ServerDuplexStream) write the messages queued
 * behind the one in flight in one batch. False when the stream is not shaped as grpc-js's are
 * (another grpc-js version): it then writes one message at a time, as before, which is only slower.
 * A call with interceptors has no framing of its own to use: its messages go one by one through
 * its sendMessage, as without batching.
 */
export function batchWrites(stream: object): boolean {
  const internals = stream as WritableInternals;
  const call = internals.call;
  if (typeof call?.sendMessage !== "function" || internals._writev) return false;
  const send = call.sendMessage.bind(call);
  // Each after the previous one's callback, as grpc-js's own _write: a message sendMessage refuses
  // (over the size limit) ends the call with its status and never calls back, so none after it is
  // written behind that status.
  const oneByOne = (chunks: readonly Chunk[], callback: () => void): void => {
    let next = 0;
    const sendNext = (): void => {
      if (next === chunks.length) return callback();
      send(chunks[next++]!.chunk, sendNext);
    };
    sendNext();
  };
  const base = framing(call);
  internals._writev = (chunks, callback) => {
    if (base === undefined) return oneByOne(chunks, callback);
    // As sendMessage: a cancelled call takes nothing and never calls back (the call is gone).
    if (base.checkCancelled()) return;
    const bodies = serialized(base, chunks);
    if (bodies === undefined) return oneByOne(chunks, callback);
    base.maybeSendMetadata();
    base.stream.write(framed(bodies), (error) => {
      if (error) {
        base.sendStatus({ code: status.INTERNAL, details: "Internal server error", metadata: null });
        return;
      }
      for (let i = 0; i < bodies.length; i++) base.callEventTracker?.addMessageSent();
      callback();
    });
  };
  return true;
}
