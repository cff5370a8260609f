import { describe, expect, it } from "vitest";
import type { JsonObject, JsonValue } from "../../../src/domain/json.js";
import { emptySharedState, type SharedState, type StateChange } from "../../../src/domain/shared-state.js";
import { applyChangeSet, replayChangeSets, type StateEdit } from "../../../src/domain/state-apply.js";
import { canonicalJson, digestState, stateChecksum } from "../../../src/domain/state-checksum.js";

const SET = (path: string, value: JsonValue): StateChange => ({ operation: "SET", path, value });
const DELETE = (path: string): StateChange => ({ operation: "DELETE", path });

function withVariables(variables: JsonObject): SharedState {
  return { ...emptySharedState(), variables };
}

function edit(...changes: StateChange[]): StateEdit {
  return { changes, replace: {} };
}

describe("applyChangeSet", () => {
  it("applies changes in order, creating intermediate objects", () => {
    const after = applyChangeSet(emptySharedState(), edit(SET("plan.step", 1), SET("plan.step", 2), SET("plan.owner.name", "ann")));
    expect(after.variables).toEqual({ plan: { step: 2, owner: { name: "ann" } } });
  });

  it("overwrites a scalar, array or null met on the way with an object", () => {
    const before = withVariables({ a: 1, b: [1, 2], c: null });
    const after = applyChangeSet(before, edit(SET("a.x", 1), SET("b.y", 2), SET("c.z", 3)));
    expect(after.variables).toEqual({ a: { x: 1 }, b: { y: 2 }, c: { z: 3 } });
  });

  it("deletes a present key and ignores an absent path, even through a non-object", () => {
    const before = withVariables({ a: { b: 1, c: 2 }, s: "text" });
    const after = applyChangeSet(before, edit(DELETE("a.b"), DELETE("a.zz"), DELETE("nope.deeper"), DELETE("s.length")));
    expect(after.variables).toEqual({ a: { c: 2 }, s: "text" });
  });

  it("changes no object of its input, however deep, and shares what the changes did not reach", () => {
    const deepFreeze = <T>(value: T): T => {
      if (typeof value === "object" && value !== null) for (const v of Object.values(value)) deepFreeze(v);
      return Object.freeze(value);
    };
    // Frozen: any write into the input throws (modules run in strict mode).
    const before = deepFreeze(withVariables({ a: { b: { c: 1 }, keep: { x: 1 } }, other: { y: [1, { z: 2 }] }, gone: { g: 1 } }));
    const after = replayChangeSets(before, [edit(SET("a.b.c", 2), SET("a.b.d", 3), DELETE("gone.g")), edit(SET("a.b.c", 4), DELETE("a.keep.nope"))]);
    expect(after.variables).toEqual({ a: { b: { c: 4, d: 3 }, keep: { x: 1 } }, other: { y: [1, { z: 2 }] }, gone: {} });
    expect(before.variables).toEqual({ a: { b: { c: 1 }, keep: { x: 1 } }, other: { y: [1, { z: 2 }] }, gone: { g: 1 } });
    expect(after.variables["other"]).toBe(before.variables["other"]);
    expect((after.variables["a"] as JsonObject)["keep"]).toBe((before.variables["a"] as JsonObject)["keep"]);
    expect(after.variables["a"]).not.toBe(before.variables["a"]);
  });

  it("keeps a key named __proto__ an own property through the copies of its path", () => {
    const variables = JSON.parse('{"__proto__":{"polluted":1},"x":{"__proto__":{"y":1}}}') as JsonObject;
    const after = applyChangeSet(withVariables(variables), edit(SET("x.__proto__.z", 2), SET("x.w", 3)));
    expect(canonicalJson(after.variables)).toBe('{"__proto__":{"polluted":1},"x":{"__proto__":{"y":1,"z":2},"w":3}}');
    expect(({} as Record<string, unknown>)["polluted"]).toBeUndefined();
  });

  it("leaves its input untouched and never shares a value with the change set", () => {
    const before = withVariables({ a: { b: 1 } });
    const value = { inner: 1 };
    const set = edit(SET("v", value), SET("v.inner", 2), SET("a.b", 9));
    const after = applyChangeSet(before, set);
    expect(before.variables).toEqual({ a: { b: 1 } });
    expect(value).toEqual({ inner: 1 });
    expect(after.variables).toEqual({ a: { b: 9 }, v: { inner: 2 } });
  });

  it("treats keys like __proto__ and constructor as plain keys", () => {
    const after = applyChangeSet(emptySharedState(), edit(SET("__proto__.polluted", true), SET("constructor.x", 1)));
    expect(Object.hasOwn(after.variables, "__proto__")).toBe(true);
    expect(({} as Record<string, unknown>)["polluted"]).toBeUndefined();
    expect(Object.getPrototypeOf(after.variables)).toBe(Object.prototype);
    expect(JSON.parse(canonicalJson(after.variables))).toEqual(JSON.parse('{"__proto__":{"polluted":true},"constructor":{"x":1}}'));
  });

  it("replaces the named parts whole after the changes", () => {
    const before: SharedState = {
      ...emptySharedState(),
      resources: { gpu: { type: "compute", amount: 1, unit: "card", status: null } },
      goals: [{ id: "old", name: "", description: "", priority: null, status: null, successCriteria: [] }],
    };
    const goals = [{ id: "new", name: "n", description: "", priority: "HIGH" as const, status: "ACTIVE" as const, successCriteria: [] }];
    const after = applyChangeSet(before, { changes: [SET("x", 1)], replace: { goals } });
    expect(after.goals).toEqual(goals);
    expect(after.resources).toEqual(before.resources);
    expect(after.variables).toEqual({ x: 1 });
  });
});

describe("replayChangeSets", () => {
  it("gives the same state and checksum as applying each set in turn", () => {
    const sets: StateEdit[] = [];
    for (let i = 0; i < 50; i++) {
      sets.push({
        changes: [SET(`k${i % 7}.v`, i), i % 3 === 0 ? DELETE(`k${(i + 1) % 7}`) : SET(`list`, [i, { i }])],
        replace: i % 10 === 0 ? { dependencies: [{ id: `d${i}`, type: null, name: "", version: "", status: null }] } : {},
      });
    }
    let stepwise = withVariables({ seed: true });
    for (const set of sets) stepwise = applyChangeSet(stepwise, set);
    const replayed = replayChangeSets(withVariables({ seed: true }), sets);
    expect(replayed).toEqual(stepwise);
    expect(stateChecksum(replayed)).toBe(stateChecksum(stepwise));
  });
});

describe("stateChecksum", () => {
  it("is sha256 hex, the same whatever the key order", () => {
    const a = withVariables({ x: 1, y: { b: 2, a: [3, { d: 4, c: 5 }] } });
    const b = withVariables({ y: { a: [3, { c: 5, d: 4 }], b: 2 }, x: 1 });
    expect(stateChecksum(a)).toMatch(/^[0-9a-f]{64}$/);
    expect(stateChecksum(a)).toBe(stateChecksum(b));
  });

  it("changes when any part changes, and survives a JSON round trip (as through jsonb)", () => {
    const state: SharedState = {
      variables: { n: 0.1, big: 1e21, text: "é\n" },
      resources: { r: { type: "t", amount: 2.5, unit: "u", status: "AVAILABLE" } },
      dependencies: [{ id: "d", type: "PLAN", name: "", version: "1", status: null }],
      goals: [],
    };
    const sum = stateChecksum(state);
    expect(stateChecksum(JSON.parse(JSON.stringify(state)) as SharedState)).toBe(sum);
    expect(stateChecksum({ ...state, goals: [{ id: "g", name: "", description: "", priority: null, status: null, successCriteria: [] }] })).not.toBe(sum);
    expect(stateChecksum({ ...state, variables: { ...state.variables, n: 0.2 } })).not.toBe(sum);
  });

  it("measures the canonical JSON's UTF-8 bytes", () => {
    const state = withVariables({ s: "é" });
    expect(digestState(state).bytes).toBe(Buffer.byteLength(canonicalJson({ dependencies: [], goals: [], resources: {}, variables: { s: "é" } })));
  });

  it("is stable: a known state has a known checksum", () => {
    // Pinned so a change to the canonical encoding (which would break stored checksums) cannot go unnoticed.
    expect(canonicalJson(withVariables({ b: 1, a: "x" }))).toBe('{"dependencies":[],"goals":[],"resources":{},"variables":{"a":"x","b":1}}');
    expect(stateChecksum(withVariables({ b: 1, a: "x" }))).toBe("d3dcc0672d07eedf0f08ff8251a8318afa6c1195c4c86f9281393167d1ebb6af");
  });
});
