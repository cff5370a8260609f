import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { SharedState } from "../../../src/domain/shared-state.js";
import { digestState, digestStateJson } from "../../../src/domain/state-checksum.js";

const state = (variables: SharedState["variables"]): SharedState => ({ variables, resources: {}, dependencies: [], goals: [] });

describe("state-checksum", () => {
  it("gives a write the canonical JSON it digested: the state itself, keys sorted, the same checksum and size", () => {
    const s = state({ z: { b: [1, null, "é"], a: true }, "10": 2, m: { y: null } });
    const { json, checksum, bytes } = digestStateJson(s);
    expect(JSON.parse(json)).toEqual({ variables: s.variables, resources: {}, dependencies: [], goals: [] });
    expect(json).toBe('{"dependencies":[],"goals":[],"resources":{},"variables":{"10":2,"m":{"y":null},"z":{"a":true,"b":[1,null,"é"]}}}');
    expect(checksum).toBe(createHash("sha256").update(json).digest("hex"));
    expect(bytes).toBe(Buffer.byteLength(json));
    // Kept for the same object; an equal state built in another key order digests the same.
    expect(digestState(s)).toEqual({ checksum, bytes });
    expect(digestState(state({ m: { y: null }, "10": 2, z: { a: true, b: [1, null, "é"] } })).checksum).toBe(checksum);
  });
});
