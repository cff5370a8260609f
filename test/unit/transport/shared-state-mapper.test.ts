import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { NullValue, ValueSchema } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { ContextEventSchema } from "../../../gen/mplp/context/v1/event_pb.js";
import { GoalStatus, StateChangeSchema, StateOperation } from "../../../gen/mplp/context/v1/shared_state_pb.js";
import type { ContextEvent } from "../../../src/domain/event.js";
import type { StateChange, StateChangeSet } from "../../../src/domain/shared-state.js";
import { eventOut } from "../../../src/transport/event-mapper.js";
import { stateChangeIn, stateChangeOut, stateChangeSetOut } from "../../../src/transport/shared-state-mapper.js";

describe("stateChangeIn", () => {
  it("maps operations, leaving UNSPECIFIED undefined for validation to name", () => {
    expect(stateChangeIn(create(StateChangeSchema, { operation: StateOperation.DELETE, path: "a.b" }))).toEqual({ operation: "DELETE", path: "a.b" });
    expect(stateChangeIn(create(StateChangeSchema, { path: "a" })).operation).toBeUndefined();
  });

  it("tells an unset value from an explicit null", () => {
    const unset = stateChangeIn(create(StateChangeSchema, { operation: StateOperation.SET, path: "a" }));
    expect("value" in unset).toBe(false);
    const nul = stateChangeIn(
      create(StateChangeSchema, { operation: StateOperation.SET, path: "a", value: create(ValueSchema, { kind: { case: "nullValue", value: NullValue.NULL_VALUE } }) }),
    );
    expect(nul).toEqual({ operation: "SET", path: "a", value: null });
  });

  it("round-trips a SET of nested JSON through the wire", () => {
    const change: StateChange = { operation: "SET", path: "plan", value: { steps: [1, "two", true, null], owner: { id: "x" } } };
    const wire = fromBinary(StateChangeSchema, toBinary(StateChangeSchema, stateChangeOut(change)));
    expect(stateChangeIn(wire)).toEqual(change);
  });
});

describe("stateChangeSetOut", () => {
  const set: StateChangeSet = {
    changes: [
      { operation: "SET", path: "a", value: 1 },
      { operation: "DELETE", path: "b" },
    ],
    replace: { goals: [{ id: "g", name: "n", description: "", priority: null, status: "ACTIVE", successCriteria: [] }], resources: {} },
    checksum: "c".repeat(64),
  };

  it("lists the changes, the replaced parts only, and an update_mask naming them", () => {
    const out = stateChangeSetOut(set);
    expect(out.changes.map((c) => [c.operation, c.path])).toEqual([
      [StateOperation.SET, "a"],
      [StateOperation.DELETE, "b"],
    ]);
    expect(out.changes[1]?.value).toBeUndefined();
    expect(out.updateMask?.paths).toEqual(["resources", "goals"]);
    expect(out.replace?.goals.map((g) => [g.id, g.status])).toEqual([["g", GoalStatus.ACTIVE]]);
    expect(out.replace?.dependencies).toEqual([]);
  });

  it("sends neither replace nor update_mask when nothing was replaced", () => {
    const out = stateChangeSetOut({ ...set, replace: {} });
    expect(out.replace).toBeUndefined();
    expect(out.updateMask).toBeUndefined();
  });

  it("is the state_change payload of a STATE_CHANGED event", () => {
    const event: ContextEvent = {
      contextId: "c",
      revision: 7,
      seq: 0,
      eventId: "e",
      type: "STATE_CHANGED",
      actor: "alice",
      occurredAt: new Date(0),
      reason: "",
      payload: { kind: "state", state: set },
    };
    const wire = fromBinary(ContextEventSchema, toBinary(ContextEventSchema, eventOut(event)));
    expect(wire.name).toBe("context.state.changed");
    expect(wire.payload.case).toBe("stateChange");
    expect(wire.payload.case === "stateChange" && wire.payload.value.changes.length).toBe(2);
  });
});
