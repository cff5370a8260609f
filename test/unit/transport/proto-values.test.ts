import { create } from "@bufbuild/protobuf";
import { StructSchema, ValueSchema } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { structIn } from "../../../src/transport/proto-values.js";

describe(structIn.name, () => {
  it("keeps a __proto__ key as data and never replaces the object's prototype", () => {
    const struct = create(StructSchema, {});
    Object.defineProperty(struct.fields, "__proto__", {
      value: create(ValueSchema, { kind: { case: "structValue", value: create(StructSchema, { fields: { polluted: create(ValueSchema, { kind: { case: "boolValue", value: true } }) } }) } }),
      enumerable: true,
    });
    const json = structIn(struct);
    expect(Object.getPrototypeOf(json)).toBe(Object.prototype);
    expect((json as Record<string, unknown>)["polluted"]).toBeUndefined();
    expect(JSON.stringify(json)).toBe('{"__proto__":{"polluted":true}}');
  });
});
