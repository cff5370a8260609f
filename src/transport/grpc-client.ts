/**
 * A typed promise client over the same protobuf-es descriptors the server uses, for tests, the
 * load driver and Node agents: unary → Promise, server streaming → AsyncIterable, client and bidi
 * streaming take an AsyncIterable of requests. Also decodes the error details the server sends.
 */
import { create, fromBinary, toBinary, type DescMessage, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import { anyUnpack } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import { once } from "node:events";
import { BadRequestSchema, ErrorInfoSchema, RetryInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { StatusSchema } from "../../gen/google/rpc/status_pb.js";
import { STATUS_DETAILS_KEY } from "./error-status.js";
import { methodPath } from "./grpc-adapter.js";

/** Per-call options. */
export interface ClientCallOptions {
  /** Request metadata, e.g. `{ "x-principal-id": "alice" }`. */
  readonly metadata?: Readonly<Record<string, string>>;
  /** When the call fails with DEADLINE_EXCEEDED: a Date, or epoch milliseconds. */
  readonly deadline?: Date | number;
  /** Aborting cancels the call (it then fails with CANCELLED). */
  readonly signal?: AbortSignal;
  /** Called with the response headers (e.g. the echoed `x-request-id`). */
  readonly onHeaders?: (headers: Readonly<Record<string, string>>) => void;
}

type Init<M extends GenServiceMethods[string]> = MessageInitShape<M["input"]>;
type Res<M extends GenServiceMethods[string]> = MessageShape<M["output"]>;

/** The client method of one RPC, shaped by its kind. */
export type ClientMethod<M extends GenServiceMethods[string]> = M["methodKind"] extends "unary"
  ? (request: Init<M>, options?: ClientCallOptions) => Promise<Res<M>>
  : M["methodKind"] extends "server_streaming"
    ? (request: Init<M>, options?: ClientCallOptions) => AsyncIterable<Res<M>>
    : M["methodKind"] extends "client_streaming"
      ? (requests: AsyncIterable<Init<M>>, options?: ClientCallOptions) => Promise<Res<M>>
      : (requests: AsyncIterable<Init<M>>, options?: ClientCallOptions) => AsyncIterable<Res<M>>;

/** A client of one service: a method per RPC (by local name), and close(). */
export type PromiseClient<S extends GenServiceMethods> = { readonly [K in keyof S]: ClientMethod<S[K]> } & {
  /** Closes the channel; calls in flight fail. */
  close(): void;
};

function metadataOf(options: ClientCallOptions | undefined): grpc.Metadata {
  const metadata = new grpc.Metadata();
  for (const [key, value] of Object.entries(options?.metadata ?? {})) metadata.set(key, value);
  return metadata;
}

function callOptionsOf(options: ClientCallOptions | undefined): grpc.CallOptions {
  return options?.deadline === undefined ? {} : { deadline: options.deadline };
}

function headersOf(metadata: grpc.Metadata): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [key, value] of Object.entries(metadata.getMap())) if (typeof value === "string") headers[key] = value;
  return headers;
}

/** Cancels the call when the signal aborts; returns the cleanup. */
function cancelOnAbort(call: grpc.Call, signal: AbortSignal | undefined): () => void {
  if (signal === undefined) return () => {};
  if (signal.aborted) {
    call.cancel();
    return () => {};
  }
  const cancel = (): void => call.cancel();
  signal.addEventListener("abort", cancel, { once: true });
  return () => signal.removeEventListener("abort", cancel);
}

/** Yields a streaming call's responses; breaking out (or throwing) cancels the call. */
async function* responses<T>(call: grpc.ClientReadableStream<T> | grpc.ClientDuplexStream<unknown, T>, cleanup: () => void): AsyncGenerator<T> {
  try {
    for await (const response of call) yield response as T;
  } finally {
    cleanup();
    call.cancel();
  }
}

/** Writes requests with back-pressure, then half-closes; a failing request iterable cancels the call. */
async function pump<T>(call: grpc.ClientDuplexStream<T, unknown> | grpc.ClientWritableStream<T>, requests: AsyncIterable<T>, done: AbortSignal): Promise<void> {
  try {
    for await (const request of requests) {
      if (done.aborted) return;
      if (!call.write(request)) await once(call, "drain", { signal: done });
    }
    call.end();
  } catch {
    if (!done.aborted) call.cancel();
  }
}

function serialize(schema: DescMessage): (message: unknown) => Buffer {
  return (message) => {
    const bytes = toBinary(schema, create(schema, message as MessageInitShape<DescMessage>));
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  };
}

/** A typed client of `service` at `address` (insecure credentials unless given). */
export function createClient<S extends GenServiceMethods>(
  service: GenService<S>,
  address: string,
  credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure(),
  channelOptions: grpc.ChannelOptions = {},
): PromiseClient<S> {
  const client = new grpc.Client(address, credentials, channelOptions);
  const methods: Record<string, unknown> = { close: () => client.close() };
  for (const method of service.methods) {
    const path = methodPath(service, method);
    const ser = serialize(method.input);
    const de = (bytes: Buffer): unknown => fromBinary(method.output, bytes);
    switch (method.methodKind) {
      case "unary":
        methods[method.localName] = (request: unknown, options?: ClientCallOptions) =>
          new Promise((resolve, reject) => {
            let cleanup = (): void => {};
            const call = client.makeUnaryRequest(path, ser, de, request, metadataOf(options), callOptionsOf(options), (error, response) => {
              cleanup();
              if (error) reject(error);
              else resolve(response);
            });
            if (options?.onHeaders) call.on("metadata", (md: grpc.Metadata) => options.onHeaders?.(headersOf(md)));
            cleanup = cancelOnAbort(call, options?.signal);
          });
        break;
      case "server_streaming":
        methods[method.localName] = (request: unknown, options?: ClientCallOptions) => {
          const call = client.makeServerStreamRequest(path, ser, de, request, metadataOf(options), callOptionsOf(options));
          if (options?.onHeaders) call.on("metadata", (md: grpc.Metadata) => options.onHeaders?.(headersOf(md)));
          return responses(call, cancelOnAbort(call, options?.signal));
        };
        break;
      case "client_streaming":
        methods[method.localName] = (requests: AsyncIterable<unknown>, options?: ClientCallOptions) =>
          new Promise((resolve, reject) => {
            const done = new AbortController();
            let cleanup = (): void => {};
            const call = client.makeClientStreamRequest(path, ser, de, metadataOf(options), callOptionsOf(options), (error, response) => {
              done.abort();
              cleanup();
              if (error) reject(error);
              else resolve(response);
            });
            if (options?.onHeaders) call.on("metadata", (md: grpc.Metadata) => options.onHeaders?.(headersOf(md)));
            cleanup = cancelOnAbort(call, options?.signal);
            void pump(call, requests, done.signal);
          });
        break;
      case "bidi_streaming":
        methods[method.localName] = (requests: AsyncIterable<unknown>, options?: ClientCallOptions) => {
          const call = client.makeBidiStreamRequest(path, ser, de, metadataOf(options), callOptionsOf(options));
          if (options?.onHeaders) call.on("metadata", (md: grpc.Metadata) => options.onHeaders?.(headersOf(md)));
          const done = new AbortController();
          const stopCancel = cancelOnAbort(call, options?.signal);
          void pump(call, requests, done.signal);
          return responses(call, () => {
            done.abort();
            stopCancel();
          });
        };
        break;
    }
  }
  return methods as PromiseClient<S>;
}

/** What a failed call's status and `grpc-status-details-bin` say. */
export interface ErrorDetails {
  readonly code: grpc.status;
  readonly message: string;
  /** ErrorInfo.reason; undefined when the status carried no ErrorInfo. */
  readonly reason: string | undefined;
  readonly domain: string | undefined;
  readonly metadata: Readonly<Record<string, string>>;
  /** BadRequest field violations; empty when none were sent. */
  readonly violations: ReadonlyArray<{ readonly field: string; readonly description: string }>;
  /** RetryInfo.retry_delay in milliseconds; undefined when the status carried no RetryInfo. */
  readonly retryDelayMs: number | undefined;
}

function isServiceError(error: unknown): error is grpc.ServiceError {
  return error instanceof Error && typeof (error as Partial<grpc.ServiceError>).code === "number" && (error as Partial<grpc.ServiceError>).metadata instanceof grpc.Metadata;
}

/** Decodes a call's failure: the gRPC status, and the ErrorInfo and BadRequest from its details trailer. */
export function errorDetails(error: unknown): ErrorDetails {
  if (!isServiceError(error)) throw new TypeError("not a gRPC ServiceError", { cause: error });
  const [raw] = error.metadata.get(STATUS_DETAILS_KEY);
  const status = raw instanceof Buffer ? fromBinary(StatusSchema, raw) : undefined;
  let info: MessageShape<typeof ErrorInfoSchema> | undefined;
  const violations: Array<{ field: string; description: string }> = [];
  let retryDelayMs: number | undefined;
  for (const any of status?.details ?? []) {
    info ??= anyUnpack(any, ErrorInfoSchema);
    const retry = anyUnpack(any, RetryInfoSchema)?.retryDelay;
    if (retry !== undefined) retryDelayMs = Number(retry.seconds) * 1000 + Math.round(retry.nanos / 1_000_000);
    const badRequest = anyUnpack(any, BadRequestSchema);
    for (const v of badRequest?.fieldViolations ?? []) violations.push({ field: v.field, description: v.description });
  }
  return {
    code: error.code,
    message: error.details,
    reason: info?.reason,
    domain: info?.domain,
    metadata: { ...(info?.metadata ?? {}) },
    violations,
    retryDelayMs,
  };
}
