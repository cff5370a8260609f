/**
 * The SDK's entry: `connect()` opens one channel and returns an `MplpClient` whose `contexts` and
 * `participants` are the typed promise clients of the two services, with the caller's identity
 * sent on every call and the retry policy of retry.ts applied, plus the helpers agents need:
 * `watch()` (resumes by itself), `keepPresence()` (KeepAlive in the background) and
 * `updateState()` (optimistic concurrency with re-read and retry on SYNC_CONFLICT).
 */
import { randomUUID } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import { ContextService } from "../../gen/mplp/context/v1/context_service_pb.js";
import type { UpdateSharedStateResponse } from "../../gen/mplp/context/v1/context_service_pb.js";
import { ParticipantService } from "../../gen/mplp/context/v1/participant_service_pb.js";
import type { SharedState, StateChangeSchema } from "../../gen/mplp/context/v1/shared_state_pb.js";
import { createClient, type ClientCallOptions, type PromiseClient } from "../transport/grpc-client.js";
import { isStatus } from "./errors.js";
import { Presence, type PresenceOptions } from "./presence.js";
import { DEFAULT_BACKOFF, isUnavailable, REQUEST_ID_METHODS, retriesOnUnavailable, retrying, type BackoffOptions } from "./retry.js";
import { watchContext, type WatchOptions, type WatchUpdate } from "./watch.js";
import { watchMany, type ManyWatchUpdate, type WatchManyOptions } from "./watch-many.js";

export type ContextClient = PromiseClient<(typeof ContextService)["method"]>;
export type ParticipantClient = PromiseClient<(typeof ParticipantService)["method"]>;
/** One SET or DELETE at a dotted path of `variables`, in plain-object form. */
export type StateChangeInit = MessageInitShape<typeof StateChangeSchema>;

export interface ConnectOptions {
  /** `host:port`. Default `127.0.0.1:50051`. */
  readonly address?: string;
  /** A JWT, sent as `authorization: Bearer <token>` on every call. */
  readonly token?: string;
  /** `x-principal-id`: who you are on a server without authentication. */
  readonly principal?: string;
  /** TLS: true for the system's roots, or `{ ca }` (PEM) for a private CA. Default: plaintext. */
  readonly tls?: boolean | { readonly ca?: Buffer };
  /** Channel credentials, for anything `tls` does not cover (client certificates). Wins over `tls`. */
  readonly credentials?: grpc.ChannelCredentials;
  /** Backoff for retried calls (see retry.ts for which calls are retried). */
  readonly retry?: Partial<BackoffOptions>;
  /**
   * grpc-js channel options. The SDK sets `grpc.max_reconnect_backoff_ms` to 10 s (grpc's default is
   * 120 s), so an agent notices a restarted server within seconds rather than minutes.
   */
  readonly channelOptions?: grpc.ChannelOptions;
  /** Extra metadata on every call. */
  readonly metadata?: Readonly<Record<string, string>>;
}

function credentialsOf(tls: ConnectOptions["tls"]): grpc.ChannelCredentials {
  if (tls === undefined || tls === false) return grpc.credentials.createInsecure();
  return grpc.credentials.createSsl(tls === true ? null : (tls.ca ?? null));
}

/** The metadata every call carries: identity first, then anything extra. */
export function identityMetadata(options: ConnectOptions): Record<string, string> {
  return {
    ...(options.metadata ?? {}),
    ...(options.principal === undefined ? {} : { "x-principal-id": options.principal }),
    ...(options.token === undefined ? {} : { authorization: `Bearer ${options.token}` }),
  };
}

/**
 * The raw client with `metadata` merged into every call and, for unary calls the policy allows,
 * retries on UNAVAILABLE. Writes deduplicated by request_id get one generated here, once per call,
 * so all attempts of that call share it.
 */
function withPolicy<S extends GenServiceMethods>(service: GenService<S>, raw: PromiseClient<S>, metadata: Record<string, string>, backoff: BackoffOptions): PromiseClient<S> {
  const bound: Record<string, unknown> = { close: () => raw.close() };
  const methods = raw as unknown as Record<string, (request: unknown, options?: ClientCallOptions) => unknown>;
  for (const method of service.methods) {
    const name = method.localName;
    const call = methods[name]!;
    const merged = (options?: ClientCallOptions): ClientCallOptions => ({ ...options, metadata: { ...metadata, ...options?.metadata } });
    if (method.methodKind !== "unary" || !retriesOnUnavailable(name)) {
      bound[name] = (request: unknown, options?: ClientCallOptions) => call(request, merged(options));
      continue;
    }
    bound[name] = (request: Record<string, unknown>, options?: ClientCallOptions) => {
      const sent = REQUEST_ID_METHODS.has(name) && !request["requestId"] ? { ...request, requestId: randomUUID() } : request;
      return retrying(() => call(sent, merged(options)) as Promise<unknown>, isUnavailable, backoff, options?.signal);
    };
  }
  return bound as PromiseClient<S>;
}

/** What `updateState`'s callback sees, and what it returns. */
export interface StateUpdate {
  readonly state: SharedState | undefined;
  readonly revision: bigint;
}

/** A connection to mplp-context. Close it when done: open streams and presences end with it. */
export class MplpClient {
  readonly contexts: ContextClient;
  readonly participants: ParticipantClient;
  private readonly rawContexts: ContextClient;
  private readonly rawParticipants: ParticipantClient;
  private readonly metadata: Record<string, string>;
  private readonly backoff: BackoffOptions;
  private readonly presences = new Set<Presence>();

  constructor(options: ConnectOptions = {}) {
    const address = options.address ?? "127.0.0.1:50051";
    const credentials = options.credentials ?? credentialsOf(options.tls);
    // Two channels to one address with the same options share one connection (grpc-js pools subchannels).
    const channelOptions: grpc.ChannelOptions = { "grpc.max_reconnect_backoff_ms": 10_000, ...options.channelOptions };
    this.rawContexts = createClient(ContextService, address, credentials, channelOptions);
    this.rawParticipants = createClient(ParticipantService, address, credentials, channelOptions);
    this.metadata = identityMetadata(options);
    this.backoff = { ...DEFAULT_BACKOFF, ...options.retry };
    this.contexts = withPolicy(ContextService, this.rawContexts, this.metadata, this.backoff);
    this.participants = withPolicy(ParticipantService, this.rawParticipants, this.metadata, this.backoff);
  }

  /**
   * Every revision of `contextId` from `options.startRevision` (default: from now), as an async
   * iterator that reconnects by itself after UNAVAILABLE or SLOW_CONSUMER from the last revision + 1,
   * so the caller sees each revision exactly once, in order. Ends when the context is deleted or
   * `options.signal` aborts; `break` ends it too.
   */
  watch(contextId: string, options: WatchOptions = {}): AsyncGenerator<WatchUpdate, void, undefined> {
    return watchContext(this.rawContexts, contextId, options, () => ({ metadata: this.metadata }));
  }

  /**
   * Every revision of each of `contextIds`, on one Watch stream (one HTTP/2 stream for them all,
   * not one per context), tagged with its context id: each context's revisions once and in order,
   * resumed by themselves after a reconnect or SLOW_CONSUMER. A context that cannot be watched on
   * (deleted, READ lost, compacted) yields `ended` and the others go on; the iterator ends once
   * every context has ended, or when `options.signal` aborts; `break` ends it too.
   */
  watchMany(contextIds: readonly string[], options: WatchManyOptions = {}): AsyncGenerator<ManyWatchUpdate, void, undefined> {
    return watchMany(this.rawContexts, contextIds, options, () => ({ metadata: this.metadata }));
  }

  /** Keeps a participant present (KeepAlive, reconnecting) until `stop()` or `close()`. */
  keepPresence(contextId: string, participantId: string, options: PresenceOptions = {}): Presence {
    const presence = new Presence(this.rawParticipants, contextId, participantId, options, () => ({ metadata: this.metadata }));
    this.presences.add(presence);
    void presence.done.catch(() => {}).finally(() => this.presences.delete(presence));
    return presence;
  }

  /**
   * Read-modify-write of the shared state with optimistic concurrency: reads the state, asks
   * `change` for the changes, and sends them with `expected_revision` = the revision read. When
   * another writer got there first (ABORTED, SYNC_CONFLICT) it reads again and asks `change` again,
   * so the change is always computed from the state it applies to. Returning [] writes nothing.
   */
  async updateState(
    contextId: string,
    change: (current: StateUpdate) => StateChangeInit[] | Promise<StateChangeInit[]>,
    options: { readonly maxAttempts?: number; readonly signal?: AbortSignal; readonly onConflict?: (attempt: number) => void } = {},
  ): Promise<UpdateSharedStateResponse | undefined> {
    let attempt = 0;
    return retrying(
      async () => {
        attempt++;
        const current = await this.contexts.getSharedState({ contextId }, options.signal ? { signal: options.signal } : {});
        const changes = await change({ state: current.sharedState, revision: current.revision });
        if (changes.length === 0) return undefined;
        try {
          return await this.contexts.updateSharedState({ contextId, changes, expectedRevision: current.revision }, options.signal ? { signal: options.signal } : {});
        } catch (error) {
          if (isStatus(error, grpc.status.ABORTED, "SYNC_CONFLICT")) options.onConflict?.(attempt);
          throw error;
        }
      },
      (error) => isStatus(error, grpc.status.ABORTED, "SYNC_CONFLICT"),
      { ...this.backoff, initialMs: Math.min(this.backoff.initialMs, 20), maxAttempts: options.maxAttempts ?? 10 },
      options.signal,
    );
  }

  /** Stops every presence and closes the channel. */
  async close(): Promise<void> {
    await Promise.all([...this.presences].map((presence) => presence.stop()));
    this.rawContexts.close();
    this.rawParticipants.close();
  }
}

/** Opens a client. Nothing is sent until the first call. */
export function connect(options: ConnectOptions = {}): MplpClient {
  return new MplpClient(options);
}
