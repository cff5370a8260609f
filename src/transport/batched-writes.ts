/**
 * A grpc-js response stream is a Writable with `_write` only: it hands its messages to the call
 * one at a time, and the next waits until the previous one's bytes have gone to the socket — a
 * whole write round (a native immediate, nghttp2, one writev) per message. A revision that 100
 * watches of one Watch stream carry took 100 rounds: with 1,000 watches of one context on 10
 * streams, 9,500 writev calls a second where a WatchContext stream per watch took 120.
 *
 * With `_writev` as well, the messages that queued behind the one in flight go down together: the
 * HTTP/2 stream takes them all and sends them in one round. Each still goes through the call's own
 * sendMessage (serialization, size limit, message counters), in order; the batch is done when the
 * last of them is written, which is when Writable moves on ('drain', `_final` and the status).
 */

/** What the stream's Writable hands `_writev`. */
interface Chunk {
  readonly chunk: unknown;
}

/** The part of grpc-js's server call its response streams write through (grpc-js 1.14, server-call.js). */
interface MessageCall {
  sendMessage(message: unknown, callback: () => void): void;
}

interface WritableInternals {
  readonly call?: Partial<MessageCall>;
  _writev?: ((chunks: Chunk[], callback: (error?: Error | null) => void) => void) | null;
}

/**
 * Lets `stream` (a grpc-js ServerWritableStream or ServerDuplexStream) write the messages queued
 * behind the one in flight in one batch. False when the stream is not shaped as grpc-js's are
 * (another grpc-js version): it then writes one message at a time, as before, which is only slower.
 */
export function batchWrites(stream: object): boolean {
  const internals = stream as WritableInternals;
  const call = internals.call;
  if (typeof call?.sendMessage !== "function" || internals._writev) return false;
  const send = call.sendMessage.bind(call);
  internals._writev = (chunks, callback) => {
    let left = chunks.length;
    const written = (): void => {
      if (--left === 0) callback();
    };
    for (const { chunk } of chunks) send(chunk, written);
  };
  return true;
}
