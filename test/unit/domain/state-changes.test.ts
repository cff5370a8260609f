import { describe, expect, it } from "vitest";
import type { AppError } from "../../../src/domain/app-error.js";
import type { JsonObject } from "../../../src/domain/json.js";
import { checkStateSize, validateStateUpdate, type StateUpdateInput } from "../../../src/domain/state-changes.js";
import { Violations } from "../../../src/domain/validation.js";

const MAX = 1024 * 1024;

function request(extra: Partial<StateUpdateInput>): StateUpdateInput {
  return { changes: [], updateMask: [], requestId: "", ...extra };
}

function fieldsOf(run: () => unknown): string[] {
  try {
    run();
  } catch (e) {
    expect((e as AppError).reason).toBe("VALIDATION_ERROR");
    return (e as AppError).violations.map((v) => v.field);
  }
  throw new Error("expected a VALIDATION_ERROR");
}

/** An object nested `levels` deep: {a:{a:…{}}}. */
function nested(levels: number): JsonObject {
  let value: JsonObject = {};
  for (let i = 1; i < levels; i++) value = { a: value };
  return value;
}

describe("validateStateUpdate", () => {
  it("accepts ordered SET and DELETE changes and keeps their order", () => {
    const valid = validateStateUpdate(
      request({
        changes: [
          { operation: "SET", path: "plan.step", value: 2 },
          { operation: "DELETE", path: "plan.old" },
          { operation: "SET", path: "note", value: null },
        ],
        requestId: "r-1",
      }),
      MAX,
    );
    expect(valid.edit.changes).toEqual([
      { operation: "SET", path: "plan.step", value: 2 },
      { operation: "DELETE", path: "plan.old" },
      { operation: "SET", path: "note", value: null },
    ]);
    expect(valid.edit.replace).toEqual({});
    expect(valid.requestId).toBe("r-1");
  });

  it("refuses an empty request, naming changes", () => {
    expect(fieldsOf(() => validateStateUpdate(request({}), MAX))).toEqual(["changes"]);
  });

  it("names each bad change by its index and field", () => {
    const fields = fieldsOf(() =>
      validateStateUpdate(
        request({
          changes: [
            { operation: "SET", path: "ok", value: 1 },
            { operation: undefined, path: "a" },
            { operation: "UNKNOWN(7)", path: "a" },
            { operation: "SET", path: "a..b", value: 1 },
            { operation: "SET", path: "a" },
            { operation: "DELETE", path: "a", value: 1 },
            { operation: "SET", path: "", value: 1 },
            { operation: "SET", path: "tab\there", value: 1 },
            { operation: "SET", path: "x".repeat(256), value: 1 },
            { operation: "SET", path: "s", value: "nul\u0000" },
            { operation: "SET", path: "n", value: Number.NaN },
          ],
        }),
        MAX,
      ),
    );
    expect(fields).toEqual([
      "changes[1].operation",
      "changes[2].operation",
      "changes[3].path",
      "changes[4].value",
      "changes[5].value",
      "changes[6].path",
      "changes[7].path",
      "changes[8].path",
      "changes[9].value",
      "changes[10].value",
    ]);
  });

  it("accepts a path of 32 segments of 255 characters, and refuses 33 segments", () => {
    const segment = "s".repeat(255);
    const deepest = Array.from({ length: 32 }, () => segment).join(".");
    expect(() => validateStateUpdate(request({ changes: [{ operation: "SET", path: deepest, value: 1 }] }), MAX)).not.toThrow();
    const tooDeep = Array.from({ length: 33 }, () => "a").join(".");
    expect(fieldsOf(() => validateStateUpdate(request({ changes: [{ operation: "DELETE", path: tooDeep }] }), MAX))).toEqual(["changes[0].path"]);
  });

  it("limits a value's depth by how deep its path already is, as variables may nest 32 levels in all", () => {
    expect(() => validateStateUpdate(request({ changes: [{ operation: "SET", path: "a.b", value: nested(30) }] }), MAX)).not.toThrow();
    expect(fieldsOf(() => validateStateUpdate(request({ changes: [{ operation: "SET", path: "a.b", value: nested(31) }] }), MAX))).toEqual([
      "changes[0].value",
    ]);
  });

  it("refuses more than 1000 changes", () => {
    const changes = Array.from({ length: 1001 }, (_, i) => ({ operation: "DELETE", path: `k${i}` }));
    expect(fieldsOf(() => validateStateUpdate(request({ changes }), MAX))).toEqual(["changes"]);
  });

  it("takes only the masked parts of replace, validated like shared state on create", () => {
    const valid = validateStateUpdate(
      request({
        replace: {
          goals: [{ id: "g1", name: "ship", description: "", status: "ACTIVE", successCriteria: [] }],
          dependencies: [{ id: "ignored", name: "", version: "" }],
        },
        updateMask: ["goals", "resources"],
      }),
      MAX,
    );
    expect(valid.edit.replace).toEqual({
      resources: {},
      goals: [{ id: "g1", name: "ship", description: "", priority: null, status: "ACTIVE", successCriteria: [] }],
    });
  });

  it("names bad replaced items and bad mask paths", () => {
    const fields = fieldsOf(() =>
      validateStateUpdate(
        request({
          replace: { goals: [{ id: "", name: "x", description: "", successCriteria: [] }], dependencies: [{ id: "d", name: "", version: "", status: "LOST" }] },
          updateMask: ["goals", "dependencies", "variables", "owner"],
        }),
        MAX,
      ),
    );
    expect(fields.sort()).toEqual(
      ["replace.dependencies[0].status", "replace.goals[0].id", "update_mask.paths[2]", "update_mask.paths[3]"].sort(),
    );
  });

  it("requires an update_mask with replace", () => {
    expect(fieldsOf(() => validateStateUpdate(request({ replace: { goals: [] } }), MAX))).toEqual(["update_mask"]);
  });

  it("refuses a request_id over 128 characters, together with violations the caller collected", () => {
    const v = new Violations();
    v.add("context_id", "must be a UUID");
    const fields = fieldsOf(() => validateStateUpdate(request({ changes: [{ operation: "DELETE", path: "a" }], requestId: "r".repeat(129) }), MAX, v));
    expect(fields).toEqual(["context_id", "request_id"]);
  });

  it("holds values to the configured size limit", () => {
    const big = "x".repeat(2000);
    expect(fieldsOf(() => validateStateUpdate(request({ changes: [{ operation: "SET", path: "a", value: big }] }), 1024))).toEqual(["changes[0].value"]);
  });
});

describe("checkStateSize", () => {
  it("passes a state at the limit and names changes (or replace) above it", () => {
    expect(() => checkStateSize(100, 100, { changes: [], replace: {} })).not.toThrow();
    expect(fieldsOf(() => checkStateSize(101, 100, { changes: [{ operation: "DELETE", path: "a" }], replace: {} }))).toEqual(["changes"]);
    expect(fieldsOf(() => checkStateSize(101, 100, { changes: [], replace: { goals: [] } }))).toEqual(["replace"]);
  });
});
