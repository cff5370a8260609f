/**
 * The proto quirks that stop at the transport edge, in one place: open enums (0 = unset, unknown
 * numbers possible), int64 as bigint, Timestamp, and google.protobuf.Value. Domain types see
 * string literals, numbers, Dates and JsonValue.
 */
import { create } from "@bufbuild/protobuf";
import type { GenEnum } from "@bufbuild/protobuf/codegenv2";
import {
  ListValueSchema,
  NullValue,
  StructSchema,
  ValueSchema,
  timestampDate,
  timestampFromDate,
  type Struct,
  type Timestamp,
  type Value,
} from "@bufbuild/protobuf/wkt";
import type { JsonObject, JsonValue } from "../domain/json.js";

/**
 * A proto enum number as the domain spells it: 0 (`*_UNSPECIFIED`) → undefined, a known value →
 * its name without the type prefix (`ACTIVE`), an unknown number (proto3 enums are open) →
 * `UNKNOWN(<n>)`, which domain validation rejects naming the field.
 */
export function enumIn<E extends number>(schema: GenEnum<E>, value: E): string | undefined {
  if (value === 0) return undefined;
  const known = schema.value[value];
  return known === undefined ? `UNKNOWN(${value})` : known.localName;
}

/**
 * A domain literal as its proto enum number; null/undefined → 0 (unset). A literal the proto does
 * not know is a bug between domain and proto, not a client error, so it throws.
 */
export function enumOut<E extends number>(schema: GenEnum<E>, literal: string | null | undefined): E {
  if (literal === null || literal === undefined) return 0 as E;
  const known = schema.values.find((v) => v.localName === literal);
  if (known === undefined) throw new Error(`${schema.typeName} has no value ${literal}`);
  return known.number as E;
}

/** int64 → number. Values past 2^53 lose precision, which domain validation then rejects as out of range. */
export function int64In(value: bigint): number {
  return Number(value);
}

/** An optional int64 → number, unset staying undefined. */
export function optionalInt64In(value: bigint | undefined): number | undefined {
  return value === undefined ? undefined : Number(value);
}

/** number → int64. */
export function int64Out(value: number): bigint {
  return BigInt(Math.trunc(value));
}

export function timestampIn(timestamp: Timestamp | undefined): Date | undefined {
  return timestamp === undefined ? undefined : timestampDate(timestamp);
}

export function timestampOut(date: Date): Timestamp {
  return timestampFromDate(date);
}

/** A google.protobuf.Value as JSON; an unset Value is null, as in the proto3 JSON mapping. */
export function valueIn(value: Value | undefined): JsonValue {
  const kind = value?.kind;
  switch (kind?.case) {
    case undefined:
    case "nullValue":
      return null;
    case "numberValue":
    case "stringValue":
    case "boolValue":
      return kind.value;
    case "structValue":
      return structIn(kind.value);
    case "listValue":
      return kind.value.values.map(valueIn);
  }
}

/**
 * A google.protobuf.Struct message as a JSON object. Keys are defined as own properties, so a
 * client's `__proto__` key stays data instead of replacing the object's prototype.
 */
export function structIn(struct: Struct): JsonObject {
  const object: JsonObject = {};
  for (const [key, field] of Object.entries(struct.fields)) {
    Object.defineProperty(object, key, { value: valueIn(field), enumerable: true, writable: true, configurable: true });
  }
  return object;
}

/** JSON as a google.protobuf.Value. */
export function valueOut(json: JsonValue): Value {
  if (json === null) return create(ValueSchema, { kind: { case: "nullValue", value: NullValue.NULL_VALUE } });
  switch (typeof json) {
    case "number":
      return create(ValueSchema, { kind: { case: "numberValue", value: json } });
    case "string":
      return create(ValueSchema, { kind: { case: "stringValue", value: json } });
    case "boolean":
      return create(ValueSchema, { kind: { case: "boolValue", value: json } });
  }
  if (Array.isArray(json)) {
    return create(ValueSchema, {
      kind: { case: "listValue", value: create(ListValueSchema, { values: json.map(valueOut) }) },
    });
  }
  return create(ValueSchema, { kind: { case: "structValue", value: structOut(json) } });
}

/** A JSON object as a google.protobuf.Struct message. */
export function structOut(json: JsonObject): Struct {
  const fields: Record<string, Value> = {};
  for (const [key, value] of Object.entries(json)) fields[key] = valueOut(value);
  return create(StructSchema, { fields });
}
