import { create, toBinary } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { GetSharedStateResponseSchema, UpdateSharedStateResponseSchema } from "../../../gen/mplp/context/v1/context_service_pb.js";
import type { SharedState } from "../../../src/domain/shared-state.js";
import type { JsonObject, JsonValue } from "../../../src/domain/json.js";
import { encodeGetSharedStateResponse, encodeUpdateSharedStateResponse, sharedStateMessage } from "../../../src/transport/shared-state-encoding.js";
import { sharedStateOut } from "../../../src/transport/shared-state-mapper.js";

const state: SharedState = {
  variables: { plan: { steps: [1, "two", null, true] }, "ü": 1.5 },
  resources: { cpu: { type: "compute", amount: 4, unit: "cores", status: "AVAILABLE" } },
  dependencies: [{ id: "d1", type: "EXTERNAL", name: "db", version: "15", status: "RESOLVED" }],
  goals: [{ id: "g1", name: "ship", description: "", priority: "HIGH", status: "ACTIVE", successCriteria: [{ metric: "p95", operator: "<", value: 100, unit: "ms" }] }],
};
const empty: SharedState = { variables: {}, resources: {}, dependencies: [], goals: [] };

describe("shared-state-encoding", () => {
  it("encodes GetSharedStateResponse exactly as toBinary does, the state's encoding kept for the next call", () => {
    for (const s of [state, empty]) {
      for (const [revision, checksum] of [[7n, "abc"], [0n, ""]] as const) {
        const message = create(GetSharedStateResponseSchema, { sharedState: sharedStateMessage(s), revision, checksum });
        expect(encodeGetSharedStateResponse(message)).toEqual(toBinary(GetSharedStateResponseSchema, message));
        expect(encodeGetSharedStateResponse(message)).toEqual(toBinary(GetSharedStateResponseSchema, message));
      }
    }
    const none = create(GetSharedStateResponseSchema, {});
    expect(encodeGetSharedStateResponse(none)).toEqual(toBinary(GetSharedStateResponseSchema, none));
  });

  it("encodes UpdateSharedStateResponse exactly as toBinary does", () => {
    for (const s of [state, empty]) {
      for (const [revision, checksum] of [[7n, "abc"], [0n, ""], [2n ** 40n, "é"]] as const) {
        const message = create(UpdateSharedStateResponseSchema, { sharedState: sharedStateMessage(s), revision, checksum });
        expect(encodeUpdateSharedStateResponse(message)).toEqual(toBinary(UpdateSharedStateResponseSchema, message));
      }
    }
    const none = create(UpdateSharedStateResponseSchema, {});
    expect(encodeUpdateSharedStateResponse(none)).toEqual(toBinary(UpdateSharedStateResponseSchema, none));
  });

  it("maps a state once per object", () => {
    expect(sharedStateMessage(state)).toBe(sharedStateMessage(state));
    expect(sharedStateMessage(state)).toEqual(sharedStateOut(state));
  });
});

/** A small deterministic generator (mulberry32), so a failure names the seed that made it. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const KEYS = ["", "a", "plan", "2", "10", "ü", "𝄞", "k.v", "-1", "step", "\ud800"];
const NUMBERS = [0, -0, 1, -1.5, 2 ** 53, 1e-300, 123456.789];

function json(next: () => number, depth: number): JsonValue {
  const pick = Math.floor(next() * (depth > 3 ? 4 : 7));
  switch (pick) {
    case 0:
      return null;
    case 1:
      return NUMBERS[Math.floor(next() * NUMBERS.length)]!;
    case 2:
      return KEYS[Math.floor(next() * KEYS.length)]!.repeat(1 + Math.floor(next() * 40));
    case 3:
      return next() < 0.5;
    case 4:
    case 5:
      return object(next, depth + 1);
    default:
      return Array.from({ length: Math.floor(next() * 4) }, () => json(next, depth + 1));
  }
}

function object(next: () => number, depth: number): JsonObject {
  const out: JsonObject = {};
  for (let i = Math.floor(next() * 5); i > 0; i--) out[KEYS[Math.floor(next() * KEYS.length)]!] = json(next, depth);
  return out;
}

describe("shared-state-encoding, generated states", () => {
  it("encodes any state as toBinary does (variables of every JSON kind, key order, resources, goals)", () => {
    for (let seed = 1; seed <= 300; seed++) {
      const next = random(seed);
      const s: SharedState & { variables: JsonObject } = {
        variables: object(next, 0),
        resources: next() < 0.5 ? {} : { [KEYS[seed % KEYS.length]!]: { type: "t", amount: NUMBERS[seed % NUMBERS.length]!, unit: "", status: seed % 2 ? "AVAILABLE" : null } },
        dependencies: next() < 0.7 ? [] : [{ id: `d${seed}`, type: "PLAN", name: "", version: "1", status: null }],
        goals:
          next() < 0.7
            ? []
            : [{ id: "g", name: "n", description: "d", priority: null, status: "DEFINED", successCriteria: [{ metric: "m", operator: ">=", value: json(next, 2), unit: "" }] }],
      };
      // Every tenth state big enough for lengths of two and three varint bytes.
      if (seed % 10 === 0) s.variables["big"] = { text: "é".repeat(10_000), items: Array.from({ length: 2_000 }, (_, i) => ({ i, s: `v${i}` })) };
      const message = create(UpdateSharedStateResponseSchema, { sharedState: sharedStateOut(s), revision: BigInt(seed), checksum: "c" });
      const ours = encodeUpdateSharedStateResponse(message);
      const theirs = toBinary(UpdateSharedStateResponseSchema, message);
      // toEqual walks a typed array element by element (16 s for these 300 on a loaded machine):
      // compare the bytes first and let toEqual show the difference only when there is one.
      if (!Buffer.from(ours.buffer, ours.byteOffset, ours.byteLength).equals(theirs)) expect(ours, `seed ${seed}`).toEqual(theirs);
    }
  });
});
