/**
 * What a handler knows about the call it serves: who is calling, the request id, the deadline and
 * an AbortSignal that fires when the client cancels or the deadline passes (so database work can
 * stop). Also the one log line each finished call writes.
 */
import { randomUUID } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import { AppError } from "../domain/app-error.js";
import type { Logger } from "../logger.js";
import { toFailureStatus, type FailureStatus } from "./error-status.js";

/** Metadata key naming the caller while real authentication is not wired in (API.md, "Auth"). */
export const PRINCIPAL_HEADER = "x-principal-id";
/** Metadata key of the request id; echoed back in the response headers. */
export const REQUEST_ID_HEADER = "x-request-id";
/** The principal of a call that names none. */
export const ANONYMOUS = "anonymous";

const MAX_PRINCIPAL_CHARS = 255;
const MAX_REQUEST_ID_CHARS = 128;
const CONTROL = /[\u0000-\u001f\u007f]/;
/**
 * grpc-js ends a call whose deadline passed with a timer of its own that may fire a millisecond
 * before Date.now() reaches the deadline; a cancellation this close to it is the deadline's doing.
 */
const DEADLINE_SLACK_MS = 10;
/** setTimeout fires at once for delays beyond this; farther deadlines need no timer anyway. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Per-call facts handed to every handler. */
export interface CallContext {
  /** Full method path, e.g. `/mplp.context.v1.ContextService/GetContext`. */
  readonly method: string;
  /** The calling principal (`anonymous` when none is named). */
  readonly principal: string;
  /** The client's `x-request-id`, or a fresh UUID; echoed in the response headers. */
  readonly requestId: string;
  /** Absolute deadline in epoch ms; undefined when the client set none. */
  readonly deadline: number | undefined;
  /** Aborted when the client cancels or the deadline passes. */
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
}

/** A call being served: its context, and how it ends (exactly once). */
export interface ActiveCall {
  readonly context: CallContext;
  /**
   * Set when the call must be refused before its handler runs (e.g. a malformed x-principal-id).
   * The adapter answers it instead of calling the handler.
   */
  readonly rejection: AppError | undefined;
  /** Records success and writes the log line. */
  succeed(): void;
  /** Maps the error to its status, writes the log line, and returns what to send. */
  fail(error: unknown): FailureStatus;
}

function firstText(metadata: grpc.Metadata, key: string): string | undefined {
  const [value] = metadata.get(key);
  return typeof value === "string" ? value : undefined;
}

function validPrincipal(raw: string | undefined): { principal: string; rejection?: AppError } {
  if (raw === undefined) return { principal: ANONYMOUS };
  const length = [...raw].length;
  if (length === 0 || length > MAX_PRINCIPAL_CHARS || CONTROL.test(raw) || raw.trim() === "") {
    return {
      principal: ANONYMOUS,
      rejection: AppError.validation([
        { field: PRINCIPAL_HEADER, description: `must be 1..${MAX_PRINCIPAL_CHARS} characters without control characters` },
      ]),
    };
  }
  return { principal: raw };
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
 * Starts serving one call: reads principal, request id and deadline, echoes the request id in the
 * response headers, and wires the AbortSignal to cancellation and the deadline.
 */
export function beginCall(call: ServerCallLike, method: string, logger: Logger): ActiveCall {
  const started = performance.now();
  const metadata = call.metadata;
  const { principal, rejection } = validPrincipal(firstText(metadata, PRINCIPAL_HEADER));
  const requestId = requestIdOf(metadata);
  const deadline = deadlineOf(call.getDeadline());
  const peer = call.getPeer();
  const controller = new AbortController();
  let finished = false;
  let endedBy: "deadline" | "cancel" | undefined;

  const timer =
    deadline !== undefined && deadline - Date.now() <= MAX_TIMER_MS
      ? setTimeout(() => {
          endedBy ??= "deadline";
          controller.abort(new DOMException("the call's deadline passed", "TimeoutError"));
        }, Math.max(0, deadline - Date.now()))
      : undefined;
  // grpc-js emits 'cancelled' after every call ends, too: only one still running was cancelled.
  call.on("cancelled", () => {
    if (finished || controller.signal.aborted) return;
    endedBy = deadline !== undefined && Date.now() >= deadline - DEADLINE_SLACK_MS ? "deadline" : "cancel";
    controller.abort(
      endedBy === "deadline"
        ? new DOMException("the call's deadline passed", "TimeoutError")
        : new DOMException("the client cancelled the call", "AbortError"),
    );
  });

  const headers = new grpc.Metadata();
  headers.set(REQUEST_ID_HEADER, requestId);
  call.sendMetadata(headers);

  const context: CallContext = { method, principal, requestId, deadline, signal: controller.signal, peer, metadata };

  function log(code: grpc.status, error?: unknown, reason?: string): void {
    const line = {
      method,
      code: grpc.status[code],
      ...(reason === undefined ? {} : { reason }),
      durationMs: Math.round((performance.now() - started) * 1000) / 1000,
      principal,
      requestId,
      peer,
    };
    if (code === grpc.status.INTERNAL || code === grpc.status.UNAVAILABLE) {
      logger.error({ ...line, err: errorChain(error) }, "call failed");
    } else {
      logger.info(line, code === grpc.status.OK ? "call finished" : "call failed");
    }
  }

  function end(): void {
    finished = true;
    if (timer !== undefined) clearTimeout(timer);
  }

  /** What the client actually saw when the call was cut off before the handler answered. */
  function cutOffCode(): grpc.status | undefined {
    if (endedBy === "deadline") return grpc.status.DEADLINE_EXCEEDED;
    if (endedBy === "cancel") return grpc.status.CANCELLED;
    return undefined;
  }

  return {
    context,
    rejection,
    succeed() {
      if (finished) return;
      end();
      log(cutOffCode() ?? grpc.status.OK);
    },
    fail(error: unknown) {
      const failure = toFailureStatus(error);
      if (!finished) {
        end();
        const cutOff = cutOffCode();
        if (cutOff !== undefined) log(cutOff);
        else log(failure.code, error, failure.reason);
      }
      return failure;
    },
  };
}
