/**
 * What a handler knows about the call it serves: who is calling (decided by the authenticator,
 * auth.ts), the request id, the deadline and an AbortSignal that fires when the client cancels,
 * the deadline passes or, on a stream, the caller's token expires (so database work can stop).
 * Also the one log line each finished call writes, and the audit line of every denial.
 */
import { randomUUID } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import {
  isSpanContextValid,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Context,
  type Span,
  type TextMapGetter,
  type TextMapPropagator,
  type Tracer,
} from "@opentelemetry/api";
import type { PeerCertificate } from "node:tls";
import { isAppError, type AppError, type ErrorReason } from "../domain/app-error.js";
import type { Logger } from "../logger.js";
import { createAuthenticator, type Authenticator } from "./auth.js";
import { unauthenticated } from "./auth-jwt.js";
import type { CallMetrics } from "./call-metrics.js";
import { toFailureStatus, type FailureStatus } from "./error-status.js";
import type { RateLimiter } from "./rate-limit.js";

export { ANONYMOUS, PRINCIPAL_HEADER } from "./auth.js";
/** Metadata key of the request id; echoed back in the response headers. */
export const REQUEST_ID_HEADER = "x-request-id";
/** The principal the log names for a call whose caller was never established. */
export const UNAUTHENTICATED_PRINCIPAL = "unauthenticated";

const MAX_REQUEST_ID_CHARS = 128;
const CONTROL = /[\u0000-\u001f\u007f]/;
/**
 * A cancellation this close to the deadline is the deadline's doing. Our deadline counts from the
 * request's arrival, the client's from its sending: the client's own deadline timer cancels the
 * call a transit earlier than ours would fire (tens of ms on a loaded machine; grpc-js's timer may
 * also fire a millisecond early). A client that truly cancels this close to its deadline loses
 * nothing by being reported as DEADLINE_EXCEEDED.
 */
const DEADLINE_SLACK_MS = 100;
/** setTimeout fires at once for delays beyond this; farther deadlines need no timer anyway. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** Denials: each is written to the log at warn, as the audit trail of who was refused what. */
const DENIALS: ReadonlySet<ErrorReason> = new Set(["UNAUTHORIZED", "FORBIDDEN", "RATE_LIMITED"]);
/** A hostile request's context id could be anything: the audit line keeps a bounded prefix. */
const MAX_LOGGED_ID_CHARS = 64;

/** Per-call facts handed to every handler. */
export interface CallContext {
  /** Full method path, e.g. `/mplp.context.v1.ContextService/GetContext`. */
  readonly method: string;
  /** The calling principal: the token's `sub`, the client certificate's CN, or x-principal-id without auth. */
  readonly principal: string;
  /** The client's `x-request-id`, or a fresh UUID; echoed in the response headers. */
  readonly requestId: string;
  /** Absolute deadline in epoch ms; undefined when the client set none. */
  readonly deadline: number | undefined;
  /** Aborted when the client cancels, the deadline passes, or (streams) the caller's token expires. */
  readonly signal: AbortSignal;
  /** The client's address, for the log. */
  readonly peer: string;
  /** The request metadata as received. */
  readonly metadata: grpc.Metadata;
}

/** The parts of a grpc-js server call (unary or stream) a call context reads. */
export interface ServerCallLike {
  readonly metadata: grpc.Metadata;
  getDeadline(): grpc.Deadline;
  getPeer(): string;
  sendMetadata(metadata: grpc.Metadata): void;
  on(event: "cancelled", listener: () => void): unknown;
  /** grpc-js ≥ 1.10: the TLS peer certificate of the connection, when the client sent one. */
  getAuthContext?(): { sslPeerCertificate?: PeerCertificate } | null;
}

/** Who may call and how often: checked before any handler runs. */
export interface CallGuard {
  readonly authenticator: Authenticator;
  /** Per-principal token bucket; absent or disabled = no limit. */
  readonly rateLimiter?: RateLimiter;
}

/** Options of one call. */
export interface BeginCallOptions {
  /** Defaults to no authentication (x-principal-id) and no rate limit. */
  readonly guard?: CallGuard;
  /** Streams end with UNAUTHENTICATED when the caller's token expires; unary calls are too short to care. */
  readonly streaming?: boolean;
  /** Calls by method and code, latency and in-flight calls; none when absent. */
  readonly metrics?: CallMetrics;
  /** One SERVER span per call, child of the caller's `traceparent`; none when absent. */
  readonly tracing?: CallTracing;
  /**
   * True once the server has begun its graceful shutdown: a stream it then ends with UNAVAILABLE
   * (the watch hub closing, so clients resume elsewhere) is logged at info, not as a failure.
   */
  readonly draining?: () => boolean;
}

/** The tracer and the propagator that reads the caller's trace context from metadata. */
export interface CallTracing {
  readonly tracer: Tracer;
  readonly propagator: TextMapPropagator;
}

/** Reads W3C trace headers (`traceparent`, `tracestate`) from gRPC metadata. */
const metadataGetter: TextMapGetter<grpc.Metadata> = {
  keys: (metadata) => Object.keys(metadata.getMap()),
  get: (metadata, key) => {
    const values = metadata.get(key).filter((v): v is string => typeof v === "string");
    return values.length === 0 ? undefined : values.length === 1 ? values[0] : values;
  },
};

/** The call's span, under the caller's trace when it sent one. */
function startSpan(tracing: CallTracing | undefined, method: string, metadata: grpc.Metadata): Span | undefined {
  if (tracing === undefined) return undefined;
  const parent = tracing.propagator.extract(ROOT_CONTEXT, metadata, metadataGetter);
  const [, service = "", name = ""] = method.split("/");
  return tracing.tracer.startSpan(
    method.slice(1),
    { kind: SpanKind.SERVER, attributes: { "rpc.system": "grpc", "rpc.service": service, "rpc.method": name } },
    parent,
  );
}

/** A call being served: its context once admitted, and how it ends (exactly once). */
export interface ActiveCall {
  /**
   * Authenticates the caller and takes a rate-limit token; resolves the handler's context or
   * throws the AppError to answer with (UNAUTHORIZED, RATE_LIMITED, VALIDATION_ERROR).
   */
  admit(): Promise<CallContext>;
  /**
   * A stream's: rejects with UNAUTHORIZED when its token expires, never settles otherwise. Unary
   * calls have none (their token was checked as they began, and they end soon after).
   */
  readonly expired: Promise<never> | undefined;
  /** Notes the request (each one, on client streams), so a denial's audit line can name its context. */
  observe(request: unknown): void;
  /** Records success and writes the log line. */
  succeed(): void;
  /** Maps the error to its status, writes the log line, and returns what to send. */
  fail(error: unknown): FailureStatus;
  /** The OpenTelemetry context holding the call's span: the handler runs in it, so its database queries become child spans. */
  readonly traceContext: Context;
}

const NO_AUTH: CallGuard = { authenticator: createAuthenticator({ jwt: undefined, tls: undefined }) };

function firstText(metadata: grpc.Metadata, key: string): string | undefined {
  const [value] = metadata.get(key);
  return typeof value === "string" ? value : undefined;
}

/** The context id a request is about, when it names one (plain, nested in context or participant). */
function contextIdIn(request: unknown): string | undefined {
  if (typeof request !== "object" || request === null) return undefined;
  const r = request as { contextId?: unknown; context?: { contextId?: unknown }; participant?: { contextId?: unknown } };
  for (const candidate of [r.contextId, r.context?.contextId, r.participant?.contextId]) {
    if (typeof candidate === "string" && candidate !== "") return candidate.slice(0, MAX_LOGGED_ID_CHARS);
  }
  return undefined;
}

/** A client-chosen request id is kept only when it is short printable text; otherwise a fresh one is made. */
function requestIdOf(metadata: grpc.Metadata): string {
  const raw = firstText(metadata, REQUEST_ID_HEADER);
  if (raw === undefined || raw === "" || raw.length > MAX_REQUEST_ID_CHARS || CONTROL.test(raw)) return randomUUID();
  return raw;
}

function deadlineOf(deadline: grpc.Deadline): number | undefined {
  const ms = deadline instanceof Date ? deadline.getTime() : deadline;
  return Number.isFinite(ms) ? ms : undefined;
}

/** Walks an error's `cause` chain into plain objects pino can write (type, message, stack, code). */
export function errorChain(error: unknown): Array<Record<string, unknown>> {
  const chain: Array<Record<string, unknown>> = [];
  let current: unknown = error;
  while (current !== undefined && current !== null && chain.length < 10) {
    if (current instanceof Error) {
      const code = (current as { code?: unknown }).code;
      chain.push({ type: current.name, message: current.message, stack: current.stack, ...(code === undefined ? {} : { code }) });
      current = current.cause;
    } else {
      chain.push({ value: String(current) });
      break;
    }
  }
  return chain;
}

/**
 * Per logger, a child without redaction for the one line every call writes: its fields are fixed
 * and ours (method, code, principal, ids, peer), none a secret, and redaction's walk of every line
 * cost several times the rest of writing it. Lines that carry an error or a denial stay redacted.
 */
const plainLoggers = new WeakMap<Logger, Logger>();

function plainLogger(logger: Logger): Logger {
  let plain = plainLoggers.get(logger);
  if (plain === undefined) {
    plain = logger.child({}, { redact: [] });
    plainLoggers.set(logger, plain);
  }
  return plain;
}

/**
 * The context a handler gets. A class so that `signal`'s getter is shared, not a closure made per
 * call: the AbortSignal itself is made only when first asked for (Node builds it lazily, and most
 * unary handlers never ask).
 */
class AdmittedCall implements CallContext {
  constructor(
    readonly method: string,
    readonly principal: string,
    readonly requestId: string,
    readonly deadline: number | undefined,
    readonly peer: string,
    readonly metadata: grpc.Metadata,
    private readonly controller: AbortController,
  ) {}

  get signal(): AbortSignal {
    return this.controller.signal;
  }
}

/**
 * One call being served. Its state is fields and its steps are methods, not a dozen closures over
 * one scope: every unary call made them all (garbage for the next scavenge) and every open stream
 * kept them for its lifetime.
 */
class ServedCall implements ActiveCall {
  readonly expired: Promise<never> | undefined;
  readonly traceContext: Context;
  private readonly started = performance.now();
  private readonly guard: CallGuard;
  private readonly span: Span | undefined;
  /** Logged whenever there is a trace: ours when exporting, the caller's (from traceparent) when not. */
  private readonly traceIds: { traceId?: string; spanId?: string };
  private readonly metadata: grpc.Metadata;
  private readonly requestId: string;
  private readonly deadline: number | undefined;
  private readonly peer: string;
  private readonly controller = new AbortController();
  private readonly headers = new grpc.Metadata();
  private readonly timer: NodeJS.Timeout | undefined;
  private principal: string = UNAUTHENTICATED_PRINCIPAL;
  private contextId: string | undefined;
  private finished = false;
  private endedBy: "deadline" | "cancel" | undefined;
  private expiryTimer: NodeJS.Timeout | undefined;
  private expire: ((error: AppError) => void) | undefined;

  constructor(
    private readonly call: ServerCallLike,
    private readonly method: string,
    private readonly logger: Logger,
    private readonly options: BeginCallOptions,
  ) {
    this.guard = options.guard ?? NO_AUTH;
    options.metrics?.callStarted(method);
    this.span = startSpan(options.tracing, method, call.metadata);
    const spanContext = this.span?.spanContext();
    this.traceIds = spanContext !== undefined && isSpanContextValid(spanContext) ? { traceId: spanContext.traceId, spanId: spanContext.spanId } : {};
    this.traceContext = this.span === undefined ? ROOT_CONTEXT : trace.setSpan(ROOT_CONTEXT, this.span);
    this.metadata = call.metadata;
    this.requestId = requestIdOf(this.metadata);
    this.deadline = deadlineOf(call.getDeadline());
    this.peer = call.getPeer();
    if (options.streaming === true) {
      this.expired = new Promise<never>((_, reject) => (this.expire = reject));
      // Nobody may be listening yet: an expiry must not be an unhandled rejection.
      this.expired.catch(() => {});
    }
    const deadline = this.deadline;
    this.timer =
      deadline !== undefined && deadline - Date.now() <= MAX_TIMER_MS
        ? setTimeout(() => {
            this.endedBy ??= "deadline";
            this.controller.abort(new DOMException("the call's deadline passed", "TimeoutError"));
          }, Math.max(0, deadline - Date.now()))
        : undefined;
    // grpc-js emits 'cancelled' after every call ends, too: only one still running was cancelled.
    call.on("cancelled", () => this.cancelled());
    // A stream's headers go at once (its client may wait for them before any message); a unary
    // call's go with its answer: sent now they took a write to the socket of their own, while the
    // handler ran, where with the answer they share its write.
    this.headers.set(REQUEST_ID_HEADER, this.requestId);
    if (options.streaming === true) call.sendMetadata(this.headers);
  }

  async admit(): Promise<CallContext> {
    const identity = await this.guard.authenticator.authenticate({
      metadata: this.metadata,
      peerCertificate: this.call.getAuthContext?.()?.sslPeerCertificate,
    });
    this.principal = identity.principal;
    this.guard.rateLimiter?.take(this.principal);
    this.armExpiry(identity.expiresAt);
    return new AdmittedCall(this.method, this.principal, this.requestId, this.deadline, this.peer, this.metadata, this.controller);
  }

  observe(request: unknown): void {
    this.contextId = contextIdIn(request) ?? this.contextId;
  }

  succeed(): void {
    this.answering();
    if (this.finished) return;
    this.end();
    this.log(this.cutOffCode() ?? grpc.status.OK);
  }

  fail(error: unknown): FailureStatus {
    this.answering();
    const failure = toFailureStatus(error);
    if (!this.finished) {
      this.end();
      const cutOff = this.cutOffCode();
      if (cutOff !== undefined) this.log(cutOff);
      else this.log(failure.code, error, failure);
    }
    return failure;
  }

  private cancelled(): void {
    if (this.finished || this.controller.signal.aborted) return;
    const deadline = this.deadline;
    this.endedBy = deadline !== undefined && Date.now() >= deadline - DEADLINE_SLACK_MS ? "deadline" : "cancel";
    this.controller.abort(
      this.endedBy === "deadline"
        ? new DOMException("the call's deadline passed", "TimeoutError")
        : new DOMException("the client cancelled the call", "AbortError"),
    );
  }

  /** A unary call's headers go out with its answer (a stream's went when it began). */
  private answering(): void {
    if (this.options.streaming !== true) this.call.sendMetadata(this.headers);
  }

  /** Ends a stream whose proof of identity lapsed: the handler's signal stops its work. */
  private armExpiry(expiresAt: number | undefined): void {
    if (!this.options.streaming || expiresAt === undefined) return;
    const delay = expiresAt - Date.now();
    if (delay > MAX_TIMER_MS) return;
    this.expiryTimer = setTimeout(() => {
      if (this.finished) return;
      const error = unauthenticated("the token has expired");
      this.controller.abort(error);
      this.expire?.(error);
    }, Math.max(0, delay));
  }

  private log(code: grpc.status, error?: unknown, failure?: FailureStatus): void {
    const { options, logger, method, span } = this;
    // log() runs exactly once per call (guarded by `finished`): the one place a call is counted as done.
    options.metrics?.callFinished(method, grpc.status[code], (performance.now() - this.started) / 1000);
    if (span !== undefined) {
      span.setAttribute("rpc.grpc.status_code", code);
      if (code !== grpc.status.OK) span.setStatus({ code: SpanStatusCode.ERROR, message: grpc.status[code] });
      span.end();
    }
    const line = {
      method,
      code: grpc.status[code],
      ...(failure?.reason === undefined ? {} : { reason: failure.reason }),
      durationMs: Math.round((performance.now() - this.started) * 1000) / 1000,
      principal: this.principal,
      requestId: this.requestId,
      peer: this.peer,
      ...this.traceIds,
    };
    if (failure?.reason !== undefined && DENIALS.has(failure.reason)) {
      // The audit trail: who was refused what, and why. The message is the client-safe one: it
      // never holds the token (auth-jwt.ts says which check failed, not what was presented).
      const about = this.contextId ?? (isAppError(error) ? error.metadata["context_id"] : undefined);
      logger.warn({ ...line, audit: "denied", ...(about === undefined ? {} : { contextId: about }), why: failure.serviceError.details }, "call denied");
    } else if (code === grpc.status.UNAVAILABLE && options.streaming === true && options.draining?.() === true) {
      // Our own graceful shutdown ending the stream, as designed (the client resumes elsewhere): not a failure.
      logger.info(line, "stream ended: server shutting down");
    } else if (failure?.reason === "SERVICE_UNAVAILABLE") {
      // A deliberate, retryable answer (busy, a race lost, shutting down), not a fault: no stack.
      // Under overload these come by the thousand, and a stack each made the overload worse.
      logger.warn({ ...line, why: isAppError(error) ? error.message : undefined }, "call turned away");
    } else if (code === grpc.status.INTERNAL || code === grpc.status.UNAVAILABLE) {
      logger.error({ ...line, err: errorChain(error) }, "call failed");
    } else {
      plainLogger(logger).info(line, code === grpc.status.OK ? "call finished" : "call failed");
    }
  }

  private end(): void {
    this.finished = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.expiryTimer !== undefined) clearTimeout(this.expiryTimer);
  }

  /** What the client actually saw when the call was cut off before the handler answered. */
  private cutOffCode(): grpc.status | undefined {
    if (this.endedBy === "deadline") return grpc.status.DEADLINE_EXCEEDED;
    if (this.endedBy === "cancel") return grpc.status.CANCELLED;
    return undefined;
  }
}

/**
 * Starts serving one call: reads request id and deadline, echoes the request id in the response
 * headers, and wires the AbortSignal to cancellation and the deadline. The caller is established
 * by admit(), before the handler runs.
 */
export function beginCall(call: ServerCallLike, method: string, logger: Logger, options: BeginCallOptions = {}): ActiveCall {
  return new ServedCall(call, method, logger, options);
}
