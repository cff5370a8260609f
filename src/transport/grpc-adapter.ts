/**
 * Serves protobuf-es service descriptors on grpc-js. protoc-gen-es v2 emits `GenService`
 * descriptors and no grpc-js stubs, so this turns one into a `grpc.ServiceDefinition` (binary codec
 * from the descriptor) and wraps typed handlers into grpc-js ones: per-call context, the error
 * table, UNIMPLEMENTED for methods without a handler, INVALID_ARGUMENT for bytes that do not decode
 * (on every method kind: a stream's later messages too), and authentication and the rate limit
 * (call-context.ts) before any handler runs.
 */
import { fromBinary, toBinary, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import * as grpc from "@grpc/grpc-js";
import { context } from "@opentelemetry/api";
import { once } from "node:events";
import type { Readable } from "node:stream";
import { AppError } from "../domain/app-error.js";
import { batchWrites } from "./batched-writes.js";
import type { Logger } from "../logger.js";
import { beginCall, type ActiveCall, type CallContext, type CallGuard, type CallTracing } from "./call-context.js";
import type { CallMetrics } from "./call-metrics.js";
import { TransportStatusError } from "./error-status.js";
import { oncePerObject } from "./once-per-object.js";
import { encoderFor } from "./response-encoders.js";

type In<M extends GenServiceMethods[string]> = MessageShape<M["input"]>;
type Out<M extends GenServiceMethods[string]> = MessageShape<M["output"]>;

/**
 * Sends one response on a stream. Returns undefined when grpc-js can take more at once (the usual
 * case), or a promise that resolves once it can (back-pressure: 'drain'); throws, or rejects, once
 * the call is gone. `await send(…)` works either way; a caller writing to many streams (the watch
 * fan-out) skips a promise and a microtask per write on the undefined path.
 */
export type Send<Res> = (response: Res) => Promise<void> | undefined;

/** The handler of one method, its shape decided by the method kind. */
export type MethodHandler<M extends GenServiceMethods[string]> = M["methodKind"] extends "unary"
  ? (request: In<M>, ctx: CallContext) => Promise<Out<M>>
  : M["methodKind"] extends "server_streaming"
    ? (request: In<M>, ctx: CallContext, send: Send<Out<M>>) => Promise<void>
    : M["methodKind"] extends "client_streaming"
      ? (requests: AsyncIterable<In<M>>, ctx: CallContext) => Promise<Out<M>>
      : (requests: AsyncIterable<In<M>>, ctx: CallContext, send: Send<Out<M>>) => Promise<void>;

/** Handlers for every method of a service, keyed by the descriptor's local names (`createContext`). */
export type ServiceHandlers<S extends GenServiceMethods> = { [K in keyof S]: MethodHandler<S[K]> };

/** The methods of a service descriptor. */
export type MethodsOf<D> = D extends GenService<infer S> ? S : never;

/** Stands for a request whose bytes did not decode; the wrapper answers INVALID_ARGUMENT for it. */
const UNDECODABLE: unique symbol = Symbol("undecodable request");

function serializer<D extends DescMessage>(schema: D): grpc.serialize<MessageShape<D>> {
  const own = encoderFor(schema) as ((message: MessageShape<D>) => Uint8Array) | undefined;
  return (message) => {
    const bytes = own === undefined ? toBinary(schema, message) : own(message);
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  };
}

/**
 * For a server stream's responses: one message object written to many streams (a WatchContext
 * revision fanned out to every watcher) is encoded once, not once per stream — at thousands of
 * deliveries a second the per-stream toBinary alone would fill a core. Such messages are never
 * mutated after they are first sent; each encoding goes with its message (oncePerObject) once no
 * stream holds it. Not for bidi streams: a Watch response names one watch and is sent once (what it
 * shares with other watches, its events, watch-encoding.ts keeps), and a WeakMap entry per delivery
 * cost more than the encoding it would save (a set, and the collector's ephemeron work after).
 */
function sharedSerializer<D extends DescMessage>(schema: D): grpc.serialize<MessageShape<D>> {
  return oncePerObject(serializer(schema));
}

/** grpc-js answers INTERNAL when a deserializer throws; a sentinel lets us answer INVALID_ARGUMENT instead. */
function lenientDeserializer<D extends DescMessage>(schema: D): grpc.deserialize<MessageShape<D> | typeof UNDECODABLE> {
  return (bytes) => {
    try {
      return fromBinary(schema, bytes);
    } catch {
      return UNDECODABLE;
    }
  };
}

/** The path grpc-js routes on: `/<package.Service>/<Method>`. */
export function methodPath(service: { typeName: string }, method: { name: string }): string {
  return `/${service.typeName}/${method.name}`;
}

/**
 * The grpc-js service definition of a protobuf-es service: paths, stream flags and a binary codec
 * per method. Requests that do not decode come out as a sentinel the adapter's wrappers refuse.
 */
export function serviceDefinition<S extends GenServiceMethods>(service: GenService<S>): grpc.ServiceDefinition {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- grpc-js definitions are untyped at this level
  const definition: Record<string, grpc.MethodDefinition<any, any>> = {};
  for (const method of service.methods) {
    definition[method.name] = {
      path: methodPath(service, method),
      requestStream: method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming",
      responseStream: method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming",
      requestSerialize: serializer(method.input),
      requestDeserialize: lenientDeserializer(method.input),
      responseSerialize: method.methodKind === "server_streaming" ? sharedSerializer(method.output) : serializer(method.output),
      responseDeserialize: (bytes: Buffer) => fromBinary(method.output, bytes),
      originalName: method.localName,
    };
  }
  return definition;
}

function undecodable(typeName: string): AppError {
  return AppError.validation([{ field: "request", description: `is not a valid ${typeName} message` }]);
}

function checked<T>(request: T | typeof UNDECODABLE, typeName: string): T {
  if (request === UNDECODABLE) throw undecodable(typeName);
  return request;
}

/**
 * Yields a stream's requests, failing on one that did not decode, and failing (rather than ending
 * cleanly) when the call was cancelled. The stream is not destroyed when its requests end: a
 * Readable's default iterator would destroy the Duplex, and with it the response side and status.
 */
async function* decodedRequests<T>(stream: Readable, typeName: string, signal: AbortSignal, active: ActiveCall): AsyncGenerator<T> {
  for await (const request of stream.iterator({ destroyOnReturn: false })) {
    const decoded = checked(request as T | typeof UNDECODABLE, typeName);
    active.observe(decoded);
    yield decoded;
  }
  signal.throwIfAborted();
}

/**
 * Writes one response and, when grpc-js buffers past its high-water mark, returns a wait for
 * 'drain', so a slow client slows the handler instead of growing memory. Throws once the call is
 * aborted. Synchronous while grpc-js keeps up: this runs once per stream for every revision a
 * watch fans out, so it creates no promise then, and reads the abort once per call, not per write
 * (AbortSignal's getters validate their receiver on every access). Messages queued behind the
 * one in flight go to the socket together (batched-writes.ts).
 */
function sender<Res>(stream: grpc.ServerWritableStream<unknown, Res> | grpc.ServerDuplexStream<unknown, Res>, signal: AbortSignal): Send<Res> {
  batchWrites(stream);
  let aborted = signal.aborted;
  if (!aborted) signal.addEventListener("abort", () => (aborted = true), { once: true });
  // One wait for 'drain' however many writers are held up by it: the watches of a Watch stream
  // all write to it, and a listener (on the stream and on the signal) per watch would pile up.
  let drained: Promise<void> | undefined;
  return (response) => {
    if (aborted) throw signal.reason;
    if (stream.write(response)) return undefined;
    drained ??= once(stream, "drain", { signal }).then(
      () => void (drained = undefined),
      (error: unknown) => {
        drained = undefined;
        throw error;
      },
    );
    return drained;
  };
}

/**
 * Admits the call (authentication, rate limit), runs the handler and turns the outcome into a
 * status; shared by the four call shapes. A stream whose token expires fails UNAUTHENTICATED at
 * once, whatever its handler is waiting for (the handler's signal aborts so it lets go).
 */
async function settle<T>(
  active: ActiveCall,
  work: (ctx: CallContext) => Promise<T>,
): Promise<{ ok: true; value: T } | { ok: false; error: grpc.ServiceError }> {
  try {
    const ctx = await active.admit();
    // In the call's trace context, so the spans of the queries it runs are children of the call's.
    const running = context.with(active.traceContext, work, undefined, ctx);
    // Once expiry wins the race, the handler's own (abort) failure has no one to hear it.
    running.catch(() => {});
    const value = active.expired === undefined ? await running : await Promise.race([running, active.expired]);
    active.succeed();
    return { ok: true, value };
  } catch (error) {
    return { ok: false, error: active.fail(error).serviceError };
  }
}

/** Options for {@link implementService}. */
export interface ImplementOptions {
  readonly logger: Logger;
  /** Authentication and rate limit; defaults to x-principal-id and no limit. */
  readonly guard?: CallGuard;
  /** Calls by method and code, latency and in-flight calls; none when absent. */
  readonly metrics?: CallMetrics;
  /** One span per call; none when absent. */
  readonly tracing?: CallTracing;
  /** True once the server is shutting down (see BeginCallOptions.draining). */
  readonly draining?: () => boolean;
}

type AnyHandler = (...args: never[]) => Promise<unknown>;

function notImplemented(name: string): AnyHandler {
  return async () => {
    throw new TransportStatusError(grpc.status.UNIMPLEMENTED, `${name} is not implemented yet`);
  };
}

/**
 * grpc-js handlers for a service: each method gets its typed handler wrapped (context, logging,
 * error table); methods with no handler answer UNIMPLEMENTED "<Method> is not implemented yet".
 */
export function implementService<S extends GenServiceMethods>(
  service: GenService<S>,
  handlers: Partial<ServiceHandlers<S>>,
  options: ImplementOptions,
): grpc.UntypedServiceImplementation {
  const implementation: grpc.UntypedServiceImplementation = {};
  const table = handlers as Partial<Record<string, AnyHandler>>;
  for (const method of service.methods) {
    const path = methodPath(service, method);
    const typeName = method.input.typeName;
    const handler = (table[method.localName] ?? notImplemented(method.name)) as (...args: unknown[]) => Promise<unknown>;
    const { logger, guard, metrics, tracing, draining } = options;
    const streaming = method.methodKind !== "unary";
    const callOptions = {
      ...(guard === undefined ? {} : { guard }),
      ...(metrics === undefined ? {} : { metrics }),
      ...(tracing === undefined ? {} : { tracing }),
      ...(draining === undefined ? {} : { draining }),
      streaming,
    };
    const begin = (call: Parameters<typeof beginCall>[0]): ActiveCall => beginCall(call, path, logger, callOptions);
    switch (method.methodKind) {
      case "unary":
        implementation[method.name] = (call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
          const active = begin(call);
          active.observe(call.request);
          void settle(active, (ctx) => handler(checked(call.request, typeName), ctx)).then((result) =>
            result.ok ? callback(null, result.value) : callback(result.error),
          );
        };
        break;
      case "server_streaming":
        implementation[method.name] = (call: grpc.ServerWritableStream<unknown, unknown>) => {
          const active = begin(call);
          active.observe(call.request);
          void settle(active, (ctx) => handler(checked(call.request, typeName), ctx, sender(call, ctx.signal))).then((result) =>
            result.ok ? call.end() : call.emit("error", result.error),
          );
        };
        break;
      case "client_streaming":
        implementation[method.name] = (call: grpc.ServerReadableStream<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
          const active = begin(call);
          void settle(active, (ctx) => handler(decodedRequests(call, typeName, ctx.signal, active), ctx)).then((result) =>
            result.ok ? callback(null, result.value) : callback(result.error),
          );
        };
        break;
      case "bidi_streaming":
        implementation[method.name] = (call: grpc.ServerDuplexStream<unknown, unknown>) => {
          const active = begin(call);
          void settle(active, (ctx) => handler(decodedRequests(call, typeName, ctx.signal, active), ctx, sender(call, ctx.signal))).then((result) =>
            result.ok ? call.end() : call.emit("error", result.error),
          );
        };
        break;
    }
  }
  return implementation;
}

/** Registers a protobuf-es service with its handlers on a grpc-js server. */
export function addService<S extends GenServiceMethods>(
  server: grpc.Server,
  service: GenService<S>,
  handlers: Partial<ServiceHandlers<S>>,
  options: ImplementOptions,
): void {
  server.addService(serviceDefinition(service), implementService(service, handlers, options));
}
