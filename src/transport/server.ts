/**
 * The gRPC server: both mplp services, health and reflection on one grpc-js Server, with
 * connection settings from Config, TLS when configured, authentication and the rate limit in front
 * of both mplp services (health and reflection stay open), and a graceful shutdown (drain, then
 * cut off after a grace).
 */
import * as grpc from "@grpc/grpc-js";
import { ContextService } from "../../gen/mplp/context/v1/context_service_pb.js";
import { ParticipantService } from "../../gen/mplp/context/v1/participant_service_pb.js";
import type { Config } from "../config.js";
import type { Logger } from "../logger.js";
import type { ContextServiceHandlers } from "./context-handlers.js";
import { createAuthenticator } from "./auth.js";
import type { CallGuard, CallTracing } from "./call-context.js";
import type { CallMetrics } from "./call-metrics.js";
import { addService } from "./grpc-adapter.js";
import type { ParticipantServiceHandlers } from "./participant-handlers.js";
import { RateLimiter } from "./rate-limit.js";
import { Health, addReflection } from "./reflection.js";
import { serverCredentials, transportSecurity } from "./tls.js";

export type { ParticipantServiceHandlers } from "./participant-handlers.js";

/** The connection settings createGrpcServer reads. */
export type ServerConfig = Pick<
  Config,
  | "grpcHost"
  | "grpcPort"
  | "shutdownGraceMs"
  | "keepaliveTimeMs"
  | "keepaliveTimeoutMs"
  | "maxConnectionAgeMs"
  | "maxConnectionAgeGraceMs"
  | "maxReceiveMessageBytes"
  | "maxConcurrentStreams"
  | "jwt"
  | "tls"
  | "rateLimitRps"
  | "rateLimitBurst"
>;

export interface GrpcServerOptions {
  readonly config: ServerConfig;
  readonly logger: Logger;
  readonly handlers: {
    readonly context: ContextServiceHandlers;
    /** Optional: without it (or for a method it leaves out) ParticipantService answers UNIMPLEMENTED. */
    readonly participant?: ParticipantServiceHandlers;
  };
  /** Calls by method and code, latency and in-flight calls (health and reflection are not counted). */
  readonly metrics?: CallMetrics;
  /** One span per call of both mplp services, child of the caller's traceparent. */
  readonly tracing?: CallTracing;
}

export interface GrpcServer {
  /** Binds grpcHost:grpcPort and resolves with the bound port (the real one when grpcPort is 0). Health stays NOT_SERVING. */
  start(): Promise<number>;
  /**
   * Health of the server and both services: SERVING once dependencies are ready, NOT_SERVING to
   * drain traffic away (after SERVING: the shutdown has begun, and streams ended from then on are
   * logged as expected, not as failures).
   */
  setServing(serving: boolean): void;
  /**
   * Health NOT_SERVING, stop accepting calls, let in-flight ones finish for shutdownGraceMs, then
   * cut off what is left. Resolves once the server has stopped.
   */
  shutdown(): Promise<void>;
}

/** How often a client may ping a connection that carries no calls before we count it abusive. */
const MIN_PING_INTERVAL_WITHOUT_DATA_MS = 10_000;

/** grpc-js server options from the configuration. */
export function serverOptions(config: ServerConfig): grpc.ServerOptions {
  return {
    // Ping a client connection after this long without activity, to find dead peers and keep proxies from idling it out.
    "grpc.keepalive_time_ms": config.keepaliveTimeMs,
    // Close a connection whose keepalive ping is not acknowledged within this long.
    "grpc.keepalive_timeout_ms": config.keepaliveTimeoutMs,
    // Keepalive pings are sent on connections with no call in flight too (idle watchers' connections included).
    "grpc.keepalive_permit_without_calls": 1,
    // Clients may ping idle connections this often (C-core's ping policy; grpc-js servers accept pings regardless).
    "grpc.http2.min_ping_interval_without_data_ms": MIN_PING_INTERVAL_WITHOUT_DATA_MS,
    // Send GOAWAY after a connection lived this long, so clients reconnect and load spreads over new instances.
    "grpc.max_connection_age_ms": config.maxConnectionAgeMs,
    // After GOAWAY, give in-flight calls (long watches included) this long before the connection is closed.
    "grpc.max_connection_age_grace_ms": config.maxConnectionAgeGraceMs,
    // Refuse request messages larger than this with RESOURCE_EXHAUSTED before decoding them.
    "grpc.max_receive_message_length": config.maxReceiveMessageBytes,
    // HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS: one connection cannot hold more calls (watches included) than this.
    "grpc.max_concurrent_streams": config.maxConcurrentStreams,
  };
}

/** Authentication and the per-principal rate limit, as the configuration asks. */
export function callGuard(config: ServerConfig): CallGuard {
  return {
    authenticator: createAuthenticator(config),
    rateLimiter: new RateLimiter({ rps: config.rateLimitRps, burst: config.rateLimitBurst }),
  };
}

/**
 * grpc-js reports a busy port as "No address added out of total 1 resolved errors: [listen
 * EADDRINUSE …]": say which setting it is and what to do. The original stays as `cause`.
 */
function grpcBindError(error: Error, address: string): Error {
  if (/EADDRINUSE/.test(error.message)) {
    return new Error(`GRPC_HOST:GRPC_PORT ${address} is already in use, perhaps by another mplp-context: stop what holds it, or set GRPC_PORT to a free port (0 picks one)`, { cause: error });
  }
  if (/EACCES/.test(error.message)) return new Error(`GRPC_HOST:GRPC_PORT ${address} may not be bound by this user: set GRPC_PORT above 1023`, { cause: error });
  return new Error(`GRPC_HOST:GRPC_PORT ${address} could not be bound: ${error.message}`, { cause: error });
}

/** Builds the server; nothing listens until start(). */
export function createGrpcServer(options: GrpcServerOptions): GrpcServer {
  const { config, logger, handlers, metrics, tracing } = options;
  const server = new grpc.Server(serverOptions(config));
  const guard = callGuard(config);
  // Set once health turns NOT_SERVING after serving (the start of a graceful shutdown): streams ended from then on are expected.
  let draining = false;
  let wasServing = false;
  const adapter = { logger, guard, draining: () => draining, ...(metrics === undefined ? {} : { metrics }), ...(tracing === undefined ? {} : { tracing }) };
  addService(server, ContextService, handlers.context, adapter);
  addService(server, ParticipantService, handlers.participant ?? {}, adapter);
  const health = new Health([ContextService.typeName, ParticipantService.typeName]);
  health.addToServer(server);
  addReflection(server);

  let stopped: Promise<void> | undefined;

  return {
    start() {
      const address = `${config.grpcHost.includes(":") ? `[${config.grpcHost}]` : config.grpcHost}:${config.grpcPort}`;
      return new Promise<number>((resolve, reject) => {
        server.bindAsync(address, serverCredentials(config.tls), (error, port) => {
          if (error) {
            reject(grpcBindError(error, address));
            return;
          }
          logger.info(
            { address, port, transport: transportSecurity(config.tls), authentication: guard.authenticator.required ? "required" : "x-principal-id" },
            "gRPC server listening",
          );
          resolve(port);
        });
      });
    },

    setServing(serving) {
      if (serving) wasServing = true;
      draining = !serving && wasServing;
      health.setServing(serving);
    },

    shutdown() {
      draining = true;
      stopped ??= new Promise<void>((resolve) => {
        health.setServing(false);
        const force = setTimeout(() => {
          logger.warn({ graceMs: config.shutdownGraceMs }, "calls still running after the shutdown grace: cutting them off");
          server.forceShutdown();
        }, config.shutdownGraceMs);
        server.tryShutdown((error) => {
          clearTimeout(force);
          if (error) logger.warn({ err: error }, "gRPC server shutdown reported an error");
          logger.info("gRPC server stopped");
          resolve();
        });
      });
      return stopped;
    },
  };
}
