/**
 * Failures as an agent or a person needs them: which gRPC code, which MPLP reason, and one line
 * that says both. The decoding itself (grpc-status-details-bin → ErrorInfo) lives in the transport's
 * client; this file only names and classifies.
 */
import { status } from "@grpc/grpc-js";
import { errorDetails, type ErrorDetails } from "../transport/grpc-client.js";

export type { ErrorDetails };

/** The name of a gRPC status code (`14` → `UNAVAILABLE`). */
export function codeName(code: number): string {
  return (status as unknown as Record<number, string>)[code] ?? `CODE_${code}`;
}

/** True for an error that a gRPC call failed with (it carries a status code and trailers). */
export function isGrpcError(error: unknown): boolean {
  try {
    errorDetails(error);
    return true;
  } catch {
    return false;
  }
}

/** The decoded status of a failed call, or undefined when `error` did not come from a call. */
export function grpcErrorOf(error: unknown): ErrorDetails | undefined {
  try {
    return errorDetails(error);
  } catch {
    return undefined;
  }
}

/**
 * One readable line: `ABORTED SYNC_CONFLICT: expected revision 3, context is at 5 (current_revision=5)`.
 * Errors that are not gRPC failures (a bad flag, a refused connection before any call) keep their message.
 */
export function describeError(error: unknown): string {
  const details = grpcErrorOf(error);
  if (details === undefined) return error instanceof Error ? error.message : String(error);
  const head = [codeName(details.code), details.reason].filter((part) => part !== undefined && part !== "").join(" ");
  const extras = [
    ...details.violations.map((v) => `${v.field}: ${v.description}`),
    ...Object.entries(details.metadata).map(([key, value]) => `${key}=${value}`),
  ];
  const message = details.message === "" ? "" : `: ${details.message}`;
  // The violations usually repeat the message; show them only when the message does not already.
  const shown = extras.filter((extra) => !details.message.includes(extra));
  return `${head}${message}${shown.length > 0 ? ` (${shown.join("; ")})` : ""}`;
}

/** Whether `error` is a failure with `code` (and, when given, ErrorInfo `reason`). */
export function isStatus(error: unknown, code: status, reason?: string): boolean {
  const details = grpcErrorOf(error);
  return details !== undefined && details.code === code && (reason === undefined || details.reason === reason);
}
