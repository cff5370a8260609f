import { create, toBinary } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { GetSharedStateResponseSchema, UpdateSharedStateResponseSchema } from "../../../gen/mplp/context/v1/context_service_pb.js";
import type { SharedState } from "../../../src/domain/shared-state.js";
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
