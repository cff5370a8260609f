/**
 * fast-check arbitraries for any request message, built from its protobuf-es descriptor, so the
 * fuzz suite covers every field of every method without a hand-written generator per method (and
 * keeps covering fields added later). Values lean hostile: huge and empty strings, unicode, NUL,
 * SQL and JSON fragments, out-of-range enums and numbers, deep and odd Structs, long lists — and
 * lean towards ids that exist, so calls get past "not found" into the code that writes.
 */
import { create, ScalarType, type DescField, type DescMessage } from "@bufbuild/protobuf";
import fc from "fast-check";
import type { JsonValue } from "../../../src/domain/json.js";
import { structOut, valueOut } from "../../../src/transport/proto-values.js";

/** Strings meant to break something: parsers, SQL, JSON, Postgres text, length limits. */
export const HOSTILE_STRINGS: readonly string[] = [
  "",
  " ",
  "\u0000",
  "a\u0000b",
  "\t\n\r",
  "'; DROP TABLE contexts; --",
  "' OR '1'='1",
  "%' AND 1=1 --",
  "\\",
  '{"$gt": ""}',
  '"}]},{"x":',
  "__proto__",
  "constructor",
  "a.b.c",
  "..",
  ".a",
  "a..b",
  "${process.exit()}",
  "../../etc/passwd",
  "\u202e\u0301\ufeff",
  "💥🧨".repeat(200),
  "é".repeat(256),
  "x".repeat(255),
  "x".repeat(256),
  "x".repeat(70_000),
  "00000000-0000-0000-0000-000000000000",
  "00000000-0000-4000-8000-000000000000",
];

/** Paths for update_mask fields: the real ones, and nonsense. */
const MASK_PATHS = [
  "name",
  "description",
  "configuration",
  "configuration.max_participants",
  "metadata",
  "metadata.tags",
  "access_control",
  "access_control.join_policy",
  "display_name",
  "roles",
  "capabilities",
  "resources",
  "dependencies",
  "goals",
  "variables",
  "context_id",
  "revision",
];

/** Ids that exist (filled in once the suite has seeded its data). */
export interface FuzzIds {
  readonly contextIds: readonly string[];
  readonly participantIds: readonly string[];
}

export function hostileString(ids: FuzzIds): fc.Arbitrary<string> {
  const known = [...ids.contextIds, ...ids.participantIds, "alice", "bob", "contributor", "admin", "viewer"];
  return fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...known) },
    { weight: 3, arbitrary: fc.constantFrom(...HOSTILE_STRINGS) },
    { weight: 2, arbitrary: fc.string({ maxLength: 40 }) },
    { weight: 1, arbitrary: fc.string({ unit: "grapheme", maxLength: 40 }) },
    { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 40 }) },
  );
}

/** An object nested `depth` levels deep. */
export function nested(depth: number): JsonValue {
  let value: JsonValue = "bottom";
  for (let i = 0; i < depth; i++) value = i % 2 === 0 ? { d: value } : [value];
  return value;
}

function jsonValue(ids: FuzzIds): fc.Arbitrary<JsonValue> {
  const leaf = fc.oneof(
    fc.constant(null),
    fc.boolean(),
    fc.double(), // NaN and ±Infinity included: Postgres cannot store them
    fc.integer(),
    hostileString(ids),
  );
  const tree = fc.letrec<{ value: JsonValue }>((tie) => ({
    value: fc.oneof(
      { depthSize: "small", withCrossShrink: true },
      leaf,
      fc.array(tie("value"), { maxLength: 3 }),
      fc.dictionary(hostileString(ids), tie("value"), { maxKeys: 3 }),
    ),
  })).value;
  return fc.oneof({ weight: 4, arbitrary: tree }, { weight: 1, arbitrary: fc.integer({ min: 20, max: 64 }).map(nested) });
}

const INT32 = { min: -(2 ** 31), max: 2 ** 31 - 1 };

function scalar(type: ScalarType, ids: FuzzIds): fc.Arbitrary<unknown> {
  switch (type) {
    case ScalarType.STRING:
      return hostileString(ids);
    case ScalarType.BOOL:
      return fc.boolean();
    case ScalarType.DOUBLE:
      return fc.double();
    case ScalarType.FLOAT:
      return fc.float();
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
      return fc.oneof(fc.constantFrom(0, 1, -1, INT32.min, INT32.max, 100, 1000, 1001), fc.integer(INT32));
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return fc.oneof(fc.constantFrom(0, 1, 2 ** 32 - 1), fc.integer({ min: 0, max: 2 ** 32 - 1 }));
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return fc.oneof(fc.constantFrom(0n, 1n, 2n ** 64n - 1n), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }));
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
      return fc.oneof(fc.constantFrom(0n, 1n, -1n, 2n ** 53n + 1n, 2n ** 63n - 1n, -(2n ** 63n)), fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }));
    case ScalarType.BYTES:
      return fc.uint8Array({ maxLength: 64 });
  }
}

/** Known enum numbers, and numbers no enum has (proto3 enums are open). */
function enumValue(values: readonly number[]): fc.Arbitrary<number> {
  return fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...values) }, { weight: 1, arbitrary: fc.integer({ min: -5, max: 10_000 }) });
}

/** A list: usually short, sometimes just past the contract's limits (100 per batch, 50 tags…). */
function list<T>(element: fc.Arbitrary<T>): fc.Arbitrary<T[]> {
  return fc.oneof({ weight: 6, arbitrary: fc.array(element, { maxLength: 4 }) }, { weight: 1, arbitrary: fc.array(element, { minLength: 51, maxLength: 105 }) });
}

/** Builds arbitraries for messages, with a depth bound for recursive ones. */
export class MessageArbitraries {
  constructor(private readonly ids: FuzzIds) {}

  message(schema: DescMessage, depth = 0): fc.Arbitrary<unknown> {
    switch (schema.typeName) {
      case "google.protobuf.Struct":
        return fc.dictionary(hostileString(this.ids), jsonValue(this.ids), { maxKeys: 4 }).map((o) => structOut(o));
      case "google.protobuf.Value":
        return jsonValue(this.ids).map(valueOut);
      case "google.protobuf.FieldMask":
        return fc.record({ paths: fc.array(fc.oneof(fc.constantFrom(...MASK_PATHS), hostileString(this.ids)), { maxLength: 4 }) }).map((init) => create(schema, init));
      case "google.protobuf.Timestamp":
        return fc.record({ seconds: fc.bigInt({ min: -(2n ** 40n), max: 2n ** 40n }), nanos: fc.integer(INT32) }).map((init) => create(schema, init));
    }
    if (depth > 4) return fc.constant(create(schema));
    const parts: Record<string, fc.Arbitrary<unknown>> = {};
    for (const field of schema.fields) if (field.oneof === undefined) parts[field.localName] = this.field(field, depth);
    for (const oneof of schema.oneofs) {
      parts[oneof.localName] = fc.oneof(...oneof.fields.map((f) => this.single(f, depth).map((value) => ({ case: f.localName, value }))));
    }
    return fc.record(parts, { requiredKeys: [] }).map((init) => create(schema, init as never));
  }

  private single(field: DescField, depth: number): fc.Arbitrary<unknown> {
    switch (field.fieldKind) {
      case "scalar":
        return scalar(field.scalar, this.ids);
      case "enum":
        return enumValue(field.enum.values.map((v) => v.number));
      case "message":
        return this.message(field.message, depth + 1);
      default:
        throw new Error(`${field.fieldKind} cannot be a oneof member`);
    }
  }

  private field(field: DescField, depth: number): fc.Arbitrary<unknown> {
    switch (field.fieldKind) {
      case "scalar":
      case "enum":
      case "message":
        return this.single(field, depth);
      case "list":
        if (field.listKind === "scalar") return list(scalar(field.scalar, this.ids));
        if (field.listKind === "enum") return list(enumValue(field.enum.values.map((v) => v.number)));
        // Past the batch limit with empty members: the count is what is tested, and big members are slow to make.
        return fc.oneof(
          { weight: 6, arbitrary: fc.array(this.message(field.message, depth + 1), { maxLength: 4 }) },
          { weight: 1, arbitrary: fc.array(fc.constant(create(field.message)), { minLength: 101, maxLength: 102 }) },
        );
      case "map": {
        const value =
          field.mapKind === "scalar"
            ? scalar(field.scalar, this.ids)
            : field.mapKind === "enum"
              ? enumValue(field.enum.values.map((v) => v.number))
              : this.message(field.message, depth + 1);
        return fc.dictionary(hostileString(this.ids), value, { maxKeys: 3 });
      }
    }
  }
}
