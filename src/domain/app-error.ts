/**
 * The one error type of the service. Every failure a client can see is an AppError with a reason
 * from the contract's fixed list; transport/error-status.ts maps each reason to a gRPC code.
 * The original error, when there is one, rides along as `cause` for the log and is never sent.
 */

/** The MPLP error codes of the contract (shared/API.md, "Errors"). */
export const ERROR_REASONS = [
  "CONTEXT_NOT_FOUND",
  "PARTICIPANT_NOT_FOUND",
  "VALIDATION_ERROR",
  "UNAUTHORIZED",
  "FORBIDDEN",
  "CONTEXT_EXISTS",
  "PARTICIPANT_ALREADY_EXISTS",
  "CONTEXT_FULL",
  "RATE_LIMITED",
  "SLOW_CONSUMER",
  "INVALID_STATE_TRANSITION",
  "MISSING_CAPABILITY",
  "MISSING_ROLE",
  "SYNC_CONFLICT",
  "REVISION_COMPACTED",
  "STORAGE_ERROR",
  "SERVICE_UNAVAILABLE",
  "TIMEOUT",
  "INTERNAL_ERROR",
] as const;

export type ErrorReason = (typeof ERROR_REASONS)[number];

/** One bad field of a request, named by its path as the client wrote it (e.g. `context.name`). */
export interface FieldViolation {
  readonly field: string;
  readonly description: string;
}

export interface AppErrorOptions {
  /** Bad fields, for VALIDATION_ERROR. */
  readonly violations?: readonly FieldViolation[];
  /** Machine-readable extras for the ErrorInfo, e.g. `current_revision`. */
  readonly metadata?: Readonly<Record<string, string>>;
  /** The underlying error, logged and never sent to a client. */
  readonly cause?: unknown;
  /** How long the client should wait before retrying (RATE_LIMITED); sent as a google.rpc.RetryInfo. */
  readonly retryDelayMs?: number;
}

/** A failure with a contract reason and a message safe to show to any client. */
export class AppError extends Error {
  readonly reason: ErrorReason;
  readonly violations: readonly FieldViolation[];
  readonly metadata: Readonly<Record<string, string>>;
  /** When set, the client should wait this long before retrying. */
  readonly retryDelayMs: number | undefined;

  constructor(reason: ErrorReason, message: string, options: AppErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "AppError";
    this.reason = reason;
    this.violations = options.violations ?? [];
    this.metadata = options.metadata ?? {};
    this.retryDelayMs = options.retryDelayMs;
  }

  /** A VALIDATION_ERROR naming every bad field; the message lists them too, for plain clients. */
  static validation(violations: readonly FieldViolation[]): AppError {
    const summary = violations.map((v) => `${v.field}: ${v.description}`).join("; ");
    return new AppError("VALIDATION_ERROR", `invalid request: ${summary}`, { violations });
  }

  static contextNotFound(contextId: string): AppError {
    return new AppError("CONTEXT_NOT_FOUND", `context ${contextId} not found`, {
      metadata: { context_id: contextId },
    });
  }

  static syncConflict(expected: number, current: number): AppError {
    return new AppError(
      "SYNC_CONFLICT",
      `expected_revision ${expected} is stale: the context is at revision ${current}`,
      { metadata: { current_revision: String(current), expected_revision: String(expected) } },
    );
  }
}

export function isAppError(error: unknown): error is AppError {
  return error instanceof AppError;
}
