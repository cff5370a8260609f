import { fromBinary } from "@bufbuild/protobuf";
import { anyUnpack } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { BadRequestSchema, ErrorInfoSchema, RetryInfoSchema } from "../../../gen/google/rpc/error_details_pb.js";
import { StatusSchema } from "../../../gen/google/rpc/status_pb.js";
import { AppError, ERROR_REASONS, type ErrorReason } from "../../../src/domain/app-error.js";
import { errorDetails } from "../../../src/transport/grpc-client.js";
import {
  ERROR_DOMAIN,
  STATUS_DETAILS_KEY,
  TRAILER_LIMITS,
  TransportStatusError,
  toFailureStatus,
} from "../../../src/transport/error-status.js";

/** The contract's table (shared/API.md, "Errors"), written out independently of the implementation. */
const CONTRACT: Record<ErrorReason, grpc.status> = {
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
};

function decodedStatus(error: grpc.ServiceError) {
  const [raw] = error.metadata.get(STATUS_DETAILS_KEY);
  if (!(raw instanceof Buffer)) throw new Error("no status details trailer");
  return fromBinary(StatusSchema, raw);
}

describe(toFailureStatus.name, () => {
  describe("code", () => {
    it.each(ERROR_REASONS.filter((r) => r !== "INTERNAL_ERROR"))("returns the contract's code when the reason is %s", (reason) => {
      const failure = toFailureStatus(new AppError(reason, `failed with ${reason}`));
      expect(failure.code).toBe(CONTRACT[reason]);
      expect(failure.serviceError.code).toBe(CONTRACT[reason]);
      expect(failure.serviceError.details).toBe(`failed with ${reason}`);
    });

    it("returns INTERNAL with only \"internal error\" when the reason is INTERNAL_ERROR", () => {
      const failure = toFailureStatus(new AppError("INTERNAL_ERROR", "pool exhausted at db-3"));
      expect(failure.code).toBe(grpc.status.INTERNAL);
      expect(failure.serviceError.details).toBe("internal error");
      expect(decodedStatus(failure.serviceError).message).toBe("internal error");
    });
  });

  describe("details", () => {
    it("returns an ErrorInfo with reason, domain and metadata when the error is an AppError", () => {
      const failure = toFailureStatus(AppError.syncConflict(3, 5));
      const status = decodedStatus(failure.serviceError);
      expect(status.code).toBe(grpc.status.ABORTED);
      expect(status.message).toBe(failure.serviceError.details);
      const info = status.details.map((d) => anyUnpack(d, ErrorInfoSchema)).find((d) => d !== undefined);
      expect(info?.reason).toBe("SYNC_CONFLICT");
      expect(info?.domain).toBe(ERROR_DOMAIN);
      expect(info?.metadata).toEqual({ current_revision: "5", expected_revision: "3" });
      expect(status.details.some((d) => anyUnpack(d, BadRequestSchema) !== undefined)).toBe(false);
    });

    it("returns a BadRequest naming every field when the reason is VALIDATION_ERROR", () => {
      const failure = toFailureStatus(
        AppError.validation([
          { field: "context.name", description: "is required" },
          { field: "context.type", description: "is required" },
        ]),
      );
      const status = decodedStatus(failure.serviceError);
      const badRequest = status.details.map((d) => anyUnpack(d, BadRequestSchema)).find((d) => d !== undefined);
      expect(badRequest?.fieldViolations.map((v) => [v.field, v.description])).toEqual([
        ["context.name", "is required"],
        ["context.type", "is required"],
      ]);
    });

    it("returns what errorDetails decodes on the client when the error crosses the wire", () => {
      const failure = toFailureStatus(AppError.contextNotFound("c-1"));
      expect(errorDetails(failure.serviceError)).toEqual({
        code: grpc.status.NOT_FOUND,
        message: "context c-1 not found",
        reason: "CONTEXT_NOT_FOUND",
        domain: ERROR_DOMAIN,
        metadata: { context_id: "c-1" },
        violations: [],
      });
    });
  });

  describe("unclassified errors", () => {
    it("returns INTERNAL with only \"internal error\" when the error is a plain Error", () => {
      const cause = new Error('relation "contexts" does not exist');
      const failure = toFailureStatus(new Error("select * from contexts failed", { cause }));
      expect(failure.code).toBe(grpc.status.INTERNAL);
      expect(failure.reason).toBe("INTERNAL_ERROR");
      expect(failure.serviceError.details).toBe("internal error");
      const status = decodedStatus(failure.serviceError);
      expect(status.message).toBe("internal error");
      const sent = JSON.stringify({ details: failure.serviceError.details, status: errorDetails(failure.serviceError) });
      expect(sent).not.toMatch(/select|relation|contexts|at /);
    });

    it("returns INTERNAL when the thrown value is not an Error at all", () => {
      expect(toFailureStatus("boom").serviceError.details).toBe("internal error");
    });

    it("returns the transport's own code without details when the error is a TransportStatusError", () => {
      const failure = toFailureStatus(new TransportStatusError(grpc.status.UNIMPLEMENTED, "X is not implemented yet"));
      expect(failure.code).toBe(grpc.status.UNIMPLEMENTED);
      expect(failure.serviceError.details).toBe("X is not implemented yet");
      expect(failure.serviceError.metadata.get(STATUS_DETAILS_KEY)).toEqual([]);
    });
  });

  describe("RetryInfo", () => {
    it("carries retry_delay for an error that says how long to wait (RATE_LIMITED), and none otherwise", () => {
      const limited = toFailureStatus(new AppError("RATE_LIMITED", "slow down", { retryDelayMs: 1250 }));
      expect(limited.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
      const [raw] = limited.serviceError.metadata.get(STATUS_DETAILS_KEY);
      const details = fromBinary(StatusSchema, raw as Buffer).details;
      const retry = details.map((d) => anyUnpack(d, RetryInfoSchema)).find((r) => r !== undefined);
      expect(retry?.retryDelay).toMatchObject({ seconds: 1n, nanos: 250_000_000 });
      expect(errorDetails(limited.serviceError)).toMatchObject({ reason: "RATE_LIMITED", retryDelayMs: 1250 });
      expect(errorDetails(toFailureStatus(new AppError("CONTEXT_FULL", "full")).serviceError).retryDelayMs).toBeUndefined();
    });
  });

  describe("bounds on the trailers", () => {
    it("keeps a hostile request's echoes small: message, field paths, descriptions and their number are cut", () => {
      const long = "x".repeat(50_000);
      const violations = Array.from({ length: 100 }, (_, i) => ({ field: `requests[${i}].context.shared_state.resources["${long}"]`, description: `must not be ${long}` }));
      const error = new AppError("VALIDATION_ERROR", `bad: ${long}`, { violations, metadata: { key: long } });
      const { serviceError } = toFailureStatus(error);
      const raw = serviceError.metadata?.get(STATUS_DETAILS_KEY)[0] as Buffer;
      expect(raw.length).toBeLessThan(16_384);
      expect(serviceError.details.length).toBeLessThanOrEqual(TRAILER_LIMITS.messageChars);
      const status = fromBinary(StatusSchema, raw);
      const bad = status.details.map((d) => anyUnpack(d, BadRequestSchema)).find((b) => b !== undefined);
      expect(bad?.fieldViolations).toHaveLength(TRAILER_LIMITS.violations + 1);
      expect(bad?.fieldViolations.at(-1)?.description).toBe("and 80 more invalid fields");
      expect(bad?.fieldViolations[0]?.field.startsWith("requests[0].context.shared_state.resources")).toBe(true);
      for (const v of bad?.fieldViolations ?? []) expect(v.field.length + v.description.length).toBeLessThanOrEqual(TRAILER_LIMITS.fieldChars + TRAILER_LIMITS.descriptionChars);
      const info = status.details.map((d) => anyUnpack(d, ErrorInfoSchema)).find((i) => i !== undefined);
      expect(info?.metadata["key"]?.length).toBeLessThanOrEqual(TRAILER_LIMITS.metadataChars);
    });

    it("leaves ordinary errors untouched", () => {
      const error = new AppError("VALIDATION_ERROR", "name is required", { violations: [{ field: "context.name", description: "is required" }] });
      const { serviceError } = toFailureStatus(error);
      expect(serviceError.details).toBe("name is required");
      expect(errorDetails(serviceError).violations).toEqual([{ field: "context.name", description: "is required" }]);
    });
  });
});
