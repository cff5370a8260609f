/**
 * The one table from domain failures to gRPC statuses (shared/API.md, "Errors"), and the
 * ServiceError grpc-js sends for each: the status code, a client-safe message and, in the
 * `grpc-status-details-bin` trailer, a serialized google.rpc.Status carrying an ErrorInfo (and a
 * BadRequest for VALIDATION_ERROR, a RetryInfo when the client should wait, as for RATE_LIMITED). Anything that is not an AppError is a bug or an outage we did
 * not classify: the client sees INTERNAL "internal error" and nothing else; the log sees the rest.
 */
import { create, toBinary } from "@bufbuild/protobuf";
import { anyPack } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import { BadRequestSchema, ErrorInfoSchema, RetryInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { StatusSchema } from "../../gen/google/rpc/status_pb.js";
import { AppError, isAppError, type ErrorReason } from "../domain/app-error.js";

/** The ErrorInfo domain of every error this service sends. */
export const ERROR_DOMAIN = "mplp.context.v1";

/** The binary trailer holding a serialized google.rpc.Status (the gRPC richer error model). */
export const STATUS_DETAILS_KEY = "grpc-status-details-bin";

/** Every contract reason and its gRPC code; `satisfies` makes tsc fail when a reason is added without one. */
export const REASON_CODES = {
  CONTEXT_NOT_FOUND: grpc.status.NOT_FOUND,
  PARTICIPANT_NOT_FOUND: grpc.status.NOT_FOUND,
  VALIDATION_ERROR: grpc.status.INVALID_ARGUMENT,
  UNAUTHORIZED: grpc.status.UNAUTHENTICATED,
  FORBIDDEN: grpc.status.PERMISSION_DENIED,
  CONTEXT_EXISTS: grpc.status.ALREADY_EXISTS,
  PARTICIPANT_ALREADY_EXISTS: grpc.status.ALREADY_EXISTS,
  CONTEXT_FULL: grpc.status.RESOURCE_EXHAUSTED,
  RATE_LIMITED: grpc.status.RESOURCE_EXHAUSTED,
  SLOW_CONSUMER: grpc.status.RESOURCE_EXHAUSTED,
  INVALID_STATE_TRANSITION: grpc.status.FAILED_PRECONDITION,
  MISSING_CAPABILITY: grpc.status.FAILED_PRECONDITION,
  MISSING_ROLE: grpc.status.FAILED_PRECONDITION,
  SYNC_CONFLICT: grpc.status.ABORTED,
  REVISION_COMPACTED: grpc.status.OUT_OF_RANGE,
  STORAGE_ERROR: grpc.status.UNAVAILABLE,
  SERVICE_UNAVAILABLE: grpc.status.UNAVAILABLE,
  TIMEOUT: grpc.status.DEADLINE_EXCEEDED,
  INTERNAL_ERROR: grpc.status.INTERNAL,
} as const satisfies Record<ErrorReason, grpc.status>;

/**
 * A status the transport itself answers with, outside the domain's reasons (UNIMPLEMENTED for a
 * method with no handler yet). Sent as is, without details.
 */
export class TransportStatusError extends Error {
  readonly code: grpc.status;

  constructor(code: grpc.status, message: string) {
    super(message);
    this.name = "TransportStatusError";
    this.code = code;
  }
}

/** What a failed call answers, and what its log line needs. */
export interface FailureStatus {
  /** The error grpc-js sends (code, details, trailers). */
  readonly serviceError: grpc.ServiceError;
  readonly code: grpc.status;
  /** The contract reason, when the failure was an AppError. */
  readonly reason?: ErrorReason;
}

/** The message a client sees for anything we did not classify. */
export const INTERNAL_MESSAGE = "internal error";

/** The gRPC code of a reason. */
export function codeOfReason(reason: ErrorReason): grpc.status {
  return REASON_CODES[reason];
}

/**
 * Bounds on what an error puts in the trailers. Field paths and messages can quote what the client
 * sent (a map key, a name), so without bounds a hostile request makes trailers of any size — and an
 * HTTP/2 peer may answer oversized headers by tearing the whole connection down (Node 24's client
 * does: every call on it then fails). The first violations are the useful ones.
 */
export const TRAILER_LIMITS = { messageChars: 1_024, violations: 20, fieldChars: 200, descriptionChars: 300, metadataChars: 256 } as const;

/** `text` cut to `max` characters (whole code points), marked with "…" when cut. */
export function clip(text: string, max: number): string {
  if (text.length <= max) return text;
  return `${Array.from(text.slice(0, max)).slice(0, -1).join("")}…`;
}

/** ErrorInfo metadata with every key and value bounded (they can quote what the client sent). */
function clippedMetadata(metadata: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.entries(metadata).map(([k, v]) => [clip(k, TRAILER_LIMITS.metadataChars), clip(v, TRAILER_LIMITS.metadataChars)]));
}

/**
 * Serializes the google.rpc.Status for an AppError: ErrorInfo always, BadRequest when fields are
 * named, RetryInfo (retry_delay) when the error says how long to wait.
 */
export function statusDetailsOf(error: AppError, code: grpc.status = codeOfReason(error.reason)): Uint8Array {
  const details = [
    anyPack(
      ErrorInfoSchema,
      create(ErrorInfoSchema, {
        reason: error.reason,
        domain: ERROR_DOMAIN,
        metadata: clippedMetadata(error.metadata),
      }),
    ),
  ];
  if (error.violations.length > 0) {
    details.push(
      anyPack(
        BadRequestSchema,
        create(BadRequestSchema, {
          fieldViolations: boundedViolations(error.violations),
        }),
      ),
    );
  }
  if (error.retryDelayMs !== undefined) {
    const ms = Math.max(0, Math.ceil(error.retryDelayMs));
    details.push(
      anyPack(
        RetryInfoSchema,
        create(RetryInfoSchema, { retryDelay: { seconds: BigInt(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1_000_000 } }),
      ),
    );
  }
  return toBinary(StatusSchema, create(StatusSchema, { code, message: clip(error.message, TRAILER_LIMITS.messageChars), details }));
}

function boundedViolations(violations: AppError["violations"]): Array<{ field: string; description: string }> {
  const shown = violations.slice(0, TRAILER_LIMITS.violations).map((v) => ({
    field: clip(v.field, TRAILER_LIMITS.fieldChars),
    description: clip(v.description, TRAILER_LIMITS.descriptionChars),
  }));
  const more = violations.length - shown.length;
  if (more > 0) shown.push({ field: "", description: `and ${more} more invalid field${more === 1 ? "" : "s"}` });
  return shown;
}

function serviceError(code: grpc.status, message: string, trailers: grpc.Metadata): grpc.ServiceError {
  // A real Error so grpc-js and loggers treat it as one; `details` is what goes on the wire.
  return Object.assign(new Error(`${code} ${grpc.status[code]}: ${message}`), {
    code,
    details: message,
    metadata: trailers,
  });
}

/**
 * Maps any thrown value to the status the client gets. AppErrors follow the table; a
 * TransportStatusError keeps its code; everything else becomes INTERNAL/INTERNAL_ERROR with the
 * message "internal error" only — its text, stack and cause stay in the log.
 */
export function toFailureStatus(error: unknown): FailureStatus {
  if (error instanceof TransportStatusError) {
    return { serviceError: serviceError(error.code, error.message, new grpc.Metadata()), code: error.code };
  }
  const safe = clientSafe(error);
  const code = codeOfReason(safe.reason);
  const trailers = new grpc.Metadata();
  trailers.set(STATUS_DETAILS_KEY, Buffer.from(statusDetailsOf(safe, code)));
  return { serviceError: serviceError(code, clip(safe.message, TRAILER_LIMITS.messageChars), trailers), code, reason: safe.reason };
}

/**
 * The AppError a client may see for any thrown value: an AppError as it is, anything else
 * INTERNAL_ERROR "internal error". An AppError someone built with reason INTERNAL_ERROR may still
 * carry detail in its message: INTERNAL never tells the client more than "internal error".
 */
function clientSafe(error: unknown): AppError {
  const appError = isAppError(error) ? error : new AppError("INTERNAL_ERROR", INTERNAL_MESSAGE);
  return codeOfReason(appError.reason) === grpc.status.INTERNAL ? new AppError("INTERNAL_ERROR", INTERNAL_MESSAGE) : appError;
}

/**
 * What a failure tells a client inside a message rather than a status (a multiplexed watch's
 * `canceled`): the same code, reason, message and metadata the status would carry, bounded alike.
 */
export function failureFieldsOf(error: unknown): { code: grpc.status; reason: string; message: string; metadata: Record<string, string> } {
  if (error instanceof TransportStatusError) return { code: error.code, reason: "", message: clip(error.message, TRAILER_LIMITS.messageChars), metadata: {} };
  const safe = clientSafe(error);
  return {
    code: codeOfReason(safe.reason),
    reason: safe.reason,
    message: clip(safe.message, TRAILER_LIMITS.messageChars),
    metadata: clippedMetadata(safe.metadata),
  };
}
