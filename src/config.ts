/**
 * Configuration, read from the environment once at start-up into a frozen, typed object.
 * A bad value stops start-up with the variable's name and what was wrong with it.
 * The object holds key material (JWT secret, TLS key): never log it.
 */
import { jwtConfig, SecurityConfigError, tlsConfig, type JwtConfig, type TlsConfig } from "./config-security.js";

export type { JwtConfig, JwtKeySource, TlsConfig } from "./config-security.js";

export interface Config {
  /** Address to listen on. */
  readonly grpcHost: string;
  /** Port to listen on; 0 picks a free one (tests). */
  readonly grpcPort: number;
  /** postgres:// URL; unset → embedded PGlite. */
  readonly databaseUrl: string | undefined;
  /** PGlite's data directory when DATABASE_URL is unset; "memory://" keeps nothing. */
  readonly pgliteDataDir: string;
  /** Most Postgres connections this instance opens. */
  readonly databasePoolMax: number;
  /** Longest any one SQL statement may run, for calls without a deadline. */
  readonly databaseStatementTimeoutMs: number;
  /** The longest a read or transaction waits for its turn at the primary before UNAVAILABLE. */
  readonly databaseQueueTimeoutMs: number;
  readonly logLevel: string;
  /** How long shutdown waits for in-flight calls before cutting them off. */
  readonly shutdownGraceMs: number;
  /** Ping an idle client connection this often, to find dead peers and keep proxies from closing it. */
  readonly keepaliveTimeMs: number;
  /** Close the connection when a keepalive ping is not answered within this. */
  readonly keepaliveTimeoutMs: number;
  /** Ask clients to reconnect after this long, so load spreads over new instances. */
  readonly maxConnectionAgeMs: number;
  /** After max connection age, let in-flight calls finish for this long before closing. */
  readonly maxConnectionAgeGraceMs: number;
  /** Largest request message accepted, in bytes. */
  readonly maxReceiveMessageBytes: number;
  /** Serve a non-loopback address without authentication (explicit opt-in; ignored once authentication is configured). */
  readonly allowUnauthenticated: boolean;
  /** A participant's presence lease lasts this long after each Heartbeat / KeepAlive message. */
  readonly presenceTtlMs: number;
  /** An INACTIVE participant is removed (reason "expired") this long after its lease lapsed. */
  readonly participantActivityTimeoutMs: number;
  /** How often each instance sweeps for lapsed leases, expired participants and contexts. */
  readonly sweepIntervalMs: number;
  /** Most contexts one sweep pass handles per kind of expiry; the rest wait for the next pass. */
  readonly sweepBatchSize: number;
  /** redis:// URL of the shared cache and doorbell; unset → in-process (one instance only). */
  readonly redisUrl: string | undefined;
  /** Prefix of every Redis key and channel this service uses. */
  readonly redisKeyPrefix: string;
  /** Largest shared state of one context, as JSON bytes. */
  readonly sharedStateMaxBytes: number;
  /** Events kept per context; older ones are compacted (watching or reading from before them → REVISION_COMPACTED). */
  readonly eventRetentionRevisions: number;
  /** A snapshot of the shared state is stored at most this many revisions apart (bounds replays for old revisions). */
  readonly stateSnapshotInterval: number;
  /** Revisions a watcher may have queued unsent before it is ended with SLOW_CONSUMER. */
  readonly watchQueueRevisions: number;
  /** How often the watch hub checks the database heads of watched contexts (makes good lost doorbells). */
  readonly watchReconcileMs: number;
  /** JWT verification (AUTH_*); undefined → no token authentication. */
  readonly jwt: JwtConfig | undefined;
  /** TLS (TLS_*); undefined → plaintext. With `clientCa`, mutual TLS: every client presents a certificate. */
  readonly tls: TlsConfig | undefined;
  /** Most concurrent HTTP/2 streams (calls, watches included) one client connection may open. */
  readonly maxConcurrentStreams: number;
  /** Most watches one principal may hold open on this instance: WatchContext streams and watches of Watch streams. */
  readonly watchMaxPerPrincipal: number;
  /** Most watches one Watch stream may hold at once. */
  readonly watchMaxPerStream: number;
  /** Calls per second each principal may make on average; 0 = no rate limit. */
  readonly rateLimitRps: number;
  /** Calls a principal may make at once after being idle (the token bucket's size). */
  readonly rateLimitBurst: number;
  /** Address of the plain-HTTP server for /metrics, /healthz and /readyz. */
  readonly metricsHost: string;
  /** Its port; 0 picks a free one. */
  readonly metricsPort: number;
  /** postgres:// URLs of read replicas (DATABASE_READ_URL, comma-separated); empty → every read goes to the primary. */
  readonly databaseReadUrls: readonly string[];
  /** A replica further behind the primary than this is skipped (its reads go to the primary). */
  readonly readReplicaMaxLagMs: number;
  /** The read cache (in-process L1, plus Redis L2 with REDIS_URL); false → every read goes to the database. */
  readonly cacheEnabled: boolean;
  /** Most entries the in-process cache holds. */
  readonly cacheL1MaxEntries: number;
  /** Most bytes (JSON size of the values) the in-process cache holds. */
  readonly cacheL1MaxBytes: number;
  /** How long an entry lives in the in-process cache (invalidation usually evicts it first). */
  readonly cacheL1TtlMs: number;
  /** How long contexts, participants and participant lists live in Redis. */
  readonly cacheL2TtlMs: number;
  /** How long GetContextStatistics results live, in both levels (they are not invalidated per write). */
  readonly cacheStatisticsTtlMs: number;
  /** OTLP/HTTP collector base URL (OTEL_EXPORTER_OTLP_ENDPOINT); spans go to <it>/v1/traces. Unset → none exported. */
  readonly otelExporterEndpoint: string | undefined;
}

/** True when callers must prove who they are: a JWT key is configured, or mutual TLS demands a certificate. */
export function authenticationConfigured(config: Pick<Config, "jwt" | "tls">): boolean {
  return config.jwt !== undefined || config.tls?.clientCa !== undefined;
}

export class ConfigError extends Error {
  constructor(variable: string, problem: string) {
    super(`invalid configuration: ${variable} ${problem}`);
    this.name = "ConfigError";
  }
}

type Env = Readonly<Record<string, string | undefined>>;

function text(env: Env, name: string, fallback: string): string {
  const value = env[name];
  return value === undefined || value === "" ? fallback : value;
}

function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  if (!/^\d+$/.test(raw.trim())) throw new ConfigError(name, `must be a whole number, got "${raw}"`);
  const value = Number(raw.trim());
  if (value < min || value > max) throw new ConfigError(name, `must be from ${min} to ${max}, got ${value}`);
  return value;
}

function oneOf(env: Env, name: string, fallback: string, allowed: readonly string[]): string {
  const value = text(env, name, fallback);
  if (!allowed.includes(value)) throw new ConfigError(name, `must be one of ${allowed.join(", ")}, got "${value}"`);
  return value;
}

function redisUrl(env: Env): string | undefined {
  const raw = env["REDIS_URL"];
  if (raw === undefined || raw === "") return undefined;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError("REDIS_URL", "is not a URL");
  }
  if (url.protocol !== "redis:" && url.protocol !== "rediss:") {
    throw new ConfigError("REDIS_URL", `must be a redis:// or rediss:// URL, got ${url.protocol}//…`);
  }
  return raw;
}

function databaseUrl(env: Env): string | undefined {
  const raw = env["DATABASE_URL"];
  if (raw === undefined || raw === "") return undefined;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError("DATABASE_URL", "is not a URL");
  }
  if (url.protocol !== "postgres:" && url.protocol !== "postgresql:") {
    throw new ConfigError("DATABASE_URL", `must be a postgres:// URL, got ${url.protocol}//…`);
  }
  return raw;
}

function databaseReadUrls(env: Env): string[] {
  const raw = env["DATABASE_READ_URL"];
  if (raw === undefined || raw.trim() === "") return [];
  return raw.split(",").map((part, i) => {
    const value = part.trim();
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      throw new ConfigError("DATABASE_READ_URL", `entry ${i + 1} is not a URL`);
    }
    if (url.protocol !== "postgres:" && url.protocol !== "postgresql:") {
      throw new ConfigError("DATABASE_READ_URL", `entry ${i + 1} must be a postgres:// URL, got ${url.protocol}//…`);
    }
    return value;
  });
}

function flag(env: Env, name: string, fallback = false): boolean {
  const raw = text(env, name, String(fallback)).toLowerCase();
  if (raw === "true" || raw === "1") return true;
  if (raw === "false" || raw === "0") return false;
  throw new ConfigError(name, `must be true or false, got "${raw}"`);
}

/** Loopback addresses: reachable from this machine only. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h === "::1" || /^127(\.\d{1,3}){3}$/.test(h);
}

const HOUR = 3_600_000;

/** The security variables, with a bad one reported as the ConfigError of its name. */
function security(env: Env): Pick<Config, "jwt" | "tls"> {
  try {
    return { jwt: jwtConfig(env, integer(env, "AUTH_CLOCK_SKEW_SECONDS", 30, 0, 300)), tls: tlsConfig(env) };
  } catch (error) {
    if (error instanceof SecurityConfigError) throw new ConfigError(error.variable, error.problem);
    throw error;
  }
}

function rateLimit(env: Env): Pick<Config, "rateLimitRps" | "rateLimitBurst"> {
  const rps = integer(env, "RATE_LIMIT_RPS", 0, 0, 1_000_000);
  // A bucket smaller than one second's worth would make the average unreachable for bursty callers.
  return { rateLimitRps: rps, rateLimitBurst: integer(env, "RATE_LIMIT_BURST", Math.max(1, rps), 1, 10_000_000) };
}

function metrics(env: Env, grpcPort: number): Pick<Config, "metricsHost" | "metricsPort"> {
  // GRPC_PORT=0 means "any free port" (tests, several local instances): the metrics port follows
  // suit unless set, so such instances never fight over 9464.
  return { metricsHost: text(env, "METRICS_HOST", "127.0.0.1"), metricsPort: integer(env, "METRICS_PORT", grpcPort === 0 ? 0 : 9464, 0, 65535) };
}

function otelEndpoint(env: Env): string | undefined {
  const raw = env["OTEL_EXPORTER_OTLP_ENDPOINT"];
  if (raw === undefined || raw === "") return undefined;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError("OTEL_EXPORTER_OTLP_ENDPOINT", "is not a URL");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new ConfigError("OTEL_EXPORTER_OTLP_ENDPOINT", `must be an http:// or https:// URL (OTLP/HTTP), got ${url.protocol}//…`);
  }
  return raw;
}

/** Reads and validates the configuration; throws ConfigError naming the first bad variable. */
export function loadConfig(env: Env = process.env): Config {
  const config: Config = Object.freeze({
    grpcHost: text(env, "GRPC_HOST", "127.0.0.1"),
    grpcPort: integer(env, "GRPC_PORT", 50051, 0, 65535),
    databaseUrl: databaseUrl(env),
    pgliteDataDir: text(env, "PGLITE_DATA_DIR", "./data/pglite"),
    databasePoolMax: integer(env, "DATABASE_POOL_MAX", 20, 1, 1000),
    databaseStatementTimeoutMs: integer(env, "DATABASE_STATEMENT_TIMEOUT_MS", 30_000, 100, HOUR),
    databaseQueueTimeoutMs: integer(env, "DATABASE_QUEUE_TIMEOUT_MS", 2_000, 1, HOUR),
    logLevel: oneOf(env, "LOG_LEVEL", "info", ["fatal", "error", "warn", "info", "debug", "trace", "silent"]),
    shutdownGraceMs: integer(env, "SHUTDOWN_GRACE_MS", 10_000, 0, 10 * 60_000),
    keepaliveTimeMs: integer(env, "GRPC_KEEPALIVE_TIME_MS", 30_000, 1_000, HOUR),
    keepaliveTimeoutMs: integer(env, "GRPC_KEEPALIVE_TIMEOUT_MS", 10_000, 1_000, HOUR),
    maxConnectionAgeMs: integer(env, "GRPC_MAX_CONNECTION_AGE_MS", 30 * 60_000, 1_000, 24 * HOUR),
    maxConnectionAgeGraceMs: integer(env, "GRPC_MAX_CONNECTION_AGE_GRACE_MS", 5 * 60_000, 0, 24 * HOUR),
    maxReceiveMessageBytes: integer(env, "GRPC_MAX_RECEIVE_MESSAGE_BYTES", 4 * 1024 * 1024, 1024, 64 * 1024 * 1024),
    allowUnauthenticated: flag(env, "ALLOW_UNAUTHENTICATED"),
    presenceTtlMs: integer(env, "PRESENCE_TTL_MS", 30_000, 100, 24 * HOUR),
    participantActivityTimeoutMs: integer(env, "PARTICIPANT_ACTIVITY_TIMEOUT_MS", 30 * 60_000, 0, 30 * 24 * HOUR),
    sweepIntervalMs: integer(env, "SWEEP_INTERVAL_MS", 1_000, 20, 10 * 60_000),
    sweepBatchSize: integer(env, "SWEEP_BATCH_SIZE", 100, 1, 10_000),
    redisUrl: redisUrl(env),
    redisKeyPrefix: text(env, "REDIS_KEY_PREFIX", "mplp:context:"),
    sharedStateMaxBytes: integer(env, "SHARED_STATE_MAX_BYTES", 1024 * 1024, 1024, 16 * 1024 * 1024),
    eventRetentionRevisions: integer(env, "EVENT_RETENTION_REVISIONS", 10_000, 10, 100_000_000),
    stateSnapshotInterval: integer(env, "STATE_SNAPSHOT_INTERVAL", 100, 1, 100_000),
    watchQueueRevisions: integer(env, "WATCH_QUEUE_REVISIONS", 1_000, 1, 1_000_000),
    watchReconcileMs: integer(env, "WATCH_RECONCILE_MS", 1_000, 20, 60_000),
    ...security(env),
    maxConcurrentStreams: integer(env, "GRPC_MAX_CONCURRENT_STREAMS", 1_000, 1, 100_000),
    watchMaxPerPrincipal: integer(env, "WATCH_MAX_PER_PRINCIPAL", 100, 1, 1_000_000),
    watchMaxPerStream: integer(env, "WATCH_MAX_PER_STREAM", 1_000, 1, 100_000),
    ...rateLimit(env),
    ...metrics(env, integer(env, "GRPC_PORT", 50051, 0, 65535)),
    otelExporterEndpoint: otelEndpoint(env),
    databaseReadUrls: databaseReadUrls(env),
    readReplicaMaxLagMs: integer(env, "READ_REPLICA_MAX_LAG_MS", 1_000, 0, HOUR),
    cacheEnabled: flag(env, "CACHE_ENABLED", true),
    cacheL1MaxEntries: integer(env, "CACHE_L1_MAX_ENTRIES", 100_000, 1, 100_000_000),
    cacheL1MaxBytes: integer(env, "CACHE_L1_MAX_BYTES", 256 * 1024 * 1024, 1024, 64 * 1024 * 1024 * 1024),
    cacheL1TtlMs: integer(env, "CACHE_L1_TTL_MS", 60_000, 1, 24 * HOUR),
    cacheL2TtlMs: integer(env, "CACHE_L2_TTL_MS", 300_000, 1_000, 7 * 24 * HOUR),
    cacheStatisticsTtlMs: integer(env, "CACHE_STATISTICS_TTL_MS", 2_000, 1, HOUR),
  });
  // Without authentication every caller may claim any principal (x-principal-id): only the machine
  // itself may call, unless the operator says otherwise in so many words.
  if (!isLoopback(config.grpcHost) && !authenticationConfigured(config) && !config.allowUnauthenticated) {
    throw new ConfigError(
      "GRPC_HOST",
      `is ${config.grpcHost}, not a loopback address, and no authentication is configured ` +
        "(AUTH_JWT_SECRET, AUTH_JWT_PUBLIC_KEY, AUTH_JWKS_FILE or TLS_CLIENT_CA_FILE): " +
        "callers could act as anyone. Configure one, or set ALLOW_UNAUTHENTICATED=true to serve it anyway",
    );
  }
  return config;
}
