/**
 * The SDK's retry policy: backoff stays within its bounds, only safe calls are retried, a refusal
 * is thrown at once, and the identity metadata carries the token as a Bearer header.
 */
import { Metadata, status, type ServiceError } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { identityMetadata } from "../../../src/sdk/client.js";
import { describeError } from "../../../src/sdk/errors.js";
import { backoffDelay, retriesOnUnavailable, retrying, type BackoffOptions } from "../../../src/sdk/retry.js";
import { isResumable } from "../../../src/sdk/watch.js";

function grpcError(code: status, details = "failed"): ServiceError {
  return Object.assign(new Error(details), { code, details, metadata: new Metadata() });
}

const fast: BackoffOptions = { initialMs: 1, maxMs: 4, multiplier: 2, maxAttempts: 4 };

describe("backoffDelay", () => {
  it("grows exponentially, is capped, and jitters within half to all of the step", () => {
    expect(backoffDelay(1, { ...fast, initialMs: 100, maxMs: 1000 }, () => 0)).toBe(50);
    expect(backoffDelay(1, { ...fast, initialMs: 100, maxMs: 1000 }, () => 1)).toBe(100);
    expect(backoffDelay(3, { ...fast, initialMs: 100, maxMs: 1000 }, () => 1)).toBe(400);
    expect(backoffDelay(10, { ...fast, initialMs: 100, maxMs: 1000 }, () => 1)).toBe(1000);
  });
});

describe("retrying", () => {
  it("retries what the predicate allows until it succeeds", async () => {
    let calls = 0;
    const result = await retrying(
      async () => {
        if (++calls < 3) throw grpcError(status.UNAVAILABLE);
        return "ok";
      },
      () => true,
      fast,
    );
    expect(result).toBe("ok");
    expect(calls).toBe(3);
  });

  it("throws a refusal at once and gives up after maxAttempts", async () => {
    let calls = 0;
    await expect(retrying(async () => ((calls++, Promise.reject(grpcError(status.NOT_FOUND))) as Promise<never>), () => false, fast)).rejects.toMatchObject({ code: status.NOT_FOUND });
    expect(calls).toBe(1);
    calls = 0;
    await expect(retrying(async () => ((calls++, Promise.reject(grpcError(status.UNAVAILABLE))) as Promise<never>), () => true, fast)).rejects.toMatchObject({ code: status.UNAVAILABLE });
    expect(calls).toBe(fast.maxAttempts);
  });
});

describe("the retry policy", () => {
  it("retries reads and request_id writes, never other writes", () => {
    for (const method of ["getContext", "listContexts", "getSharedState", "listContextEvents", "listParticipants", "heartbeat"]) expect(retriesOnUnavailable(method), method).toBe(true);
    for (const method of ["createContext", "updateSharedState", "addParticipant"]) expect(retriesOnUnavailable(method), method).toBe(true);
    for (const method of ["updateContext", "transitionContext", "deleteContext", "removeParticipant", "updateParticipant"]) expect(retriesOnUnavailable(method), method).toBe(false);
  });

  it("resumes a watch after UNAVAILABLE or a transport failure, not after a refusal", () => {
    expect(isResumable(grpcError(status.UNAVAILABLE))).toBe(true);
    expect(isResumable(grpcError(status.INTERNAL, "Received RST_STREAM with code 2"))).toBe(true);
    expect(isResumable(grpcError(status.CANCELLED))).toBe(true); // by the server: our own cancel is checked first
    expect(isResumable(grpcError(status.PERMISSION_DENIED))).toBe(false);
    expect(isResumable(grpcError(status.OUT_OF_RANGE))).toBe(false);
    expect(isResumable(new Error("not grpc"))).toBe(false);
  });
});

describe("identityMetadata", () => {
  it("sends the token as authorization: Bearer and the principal as x-principal-id", () => {
    expect(identityMetadata({ token: "abc.def.ghi", principal: "alice" })).toEqual({ authorization: "Bearer abc.def.ghi", "x-principal-id": "alice" });
    expect(identityMetadata({})).toEqual({});
  });
});

describe("describeError", () => {
  it("names the code; non-gRPC errors keep their message", () => {
    expect(describeError(grpcError(status.UNAVAILABLE, "No connection established"))).toBe("UNAVAILABLE: No connection established");
    expect(describeError(new Error("boom"))).toBe("boom");
  });
});
