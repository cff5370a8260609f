import { describe, expect, it } from "vitest";
import type { AppError } from "../../../src/domain/app-error.js";
import { canonicalJson, decodePageToken, effectivePageSize, encodePageToken } from "../../../src/domain/page-token.js";

const isPos = (p: unknown): p is { n: number } => typeof (p as { n?: unknown })?.n === "number";

function violationOf(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (e) {
    const err = e as AppError;
    expect(err.reason).toBe("VALIDATION_ERROR");
    return err.violations[0]?.field;
  }
}

describe("page tokens", () => {
  it("round-trip a position for the same query", () => {
    const token = encodePageToken({ n: 7 }, { filter: { a: 1, b: "x" } });
    expect(decodePageToken(token, { filter: { b: "x", a: 1 } }, isPos)).toEqual({ n: 7 });
  });

  it("treat the empty token as the first page", () => {
    expect(decodePageToken("", {}, isPos)).toBeUndefined();
  });

  it("refuse a token replayed with another filter, naming page_token", () => {
    const token = encodePageToken({ n: 7 }, { filter: { a: 1 } });
    expect(violationOf(() => decodePageToken(token, { filter: { a: 2 } }, isPos))).toBe("page_token");
  });

  it.each(["garbage!", "Zm9v", "eyJ2IjoxfQ", "x".repeat(2000), Buffer.from('{"v":1,"q":"0","p":{"n":"1"}}').toString("base64url")])(
    "refuse a token that does not decode (%s)",
    (token) => {
      expect(violationOf(() => decodePageToken(token, {}, isPos))).toBe("page_token");
    },
  );
});

describe("effectivePageSize", () => {
  it("defaults 0 to 20 and caps at 1000", () => {
    expect(effectivePageSize(0)).toBe(20);
    expect(effectivePageSize(5)).toBe(5);
    expect(effectivePageSize(5000)).toBe(1000);
  });

  it("refuses a negative size", () => {
    expect(violationOf(() => effectivePageSize(-1))).toBe("page_size");
  });
});

describe("canonicalJson", () => {
  it("sorts keys and drops undefined", () => {
    expect(canonicalJson({ b: 1, a: [2, { d: undefined, c: 3 }] })).toBe('{"a":[2,{"c":3}],"b":1}');
  });
});
