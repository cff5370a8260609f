/**
 * A google.protobuf.Struct's bytes straight from JSON, in two passes over it: first the size of
 * every nested message (each map entry, each Value, each list), then the bytes, each written once
 * into one buffer of the right size. protobuf-es's BinaryWriter copies a nested message into its
 * parent at every level (fork/join), and a JSON document is three message levels per level of
 * JSON (map entry, Value, Struct): for a 30 KB shared state that copying and its garbage were about
 * a third of an UpdateSharedState's server CPU. Equal to toBinary byte for byte
 * (test/unit/transport/shared-state-encoding.test.ts).
 *
 * Wire shapes: Struct { map<string, Value> fields = 1 } (entry: key = 1, value = 2); Value's one
 * kind: null_value = 1 (varint 0), number_value = 2 (double), string_value = 3, bool_value = 4,
 * struct_value = 5, list_value = 6; ListValue { repeated Value values = 1 }.
 */
import type { JsonObject, JsonValue } from "@bufbuild/protobuf";

const FIELD_1_LD = 0x0a;
const FIELD_2_LD = 0x12;
const NULL_TAG = 0x08;
const NUMBER_TAG = 0x11;
const STRING_TAG = 0x1a;
const BOOL_TAG = 0x20;
const STRUCT_TAG = 0x2a;
const LIST_TAG = 0x32;

function varintLength(n: number): number {
  return n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5;
}

/** A length-delimited field's bytes after its tag: the length's varint and the body. */
function delimited(body: number): number {
  return varintLength(body) + body;
}

/**
 * The first pass: records every length the second pass needs (entries, values, nested structs and
 * lists, strings as UTF-8) in the order it needs them — a slot taken before a message's contents
 * are measured, filled after — and returns the body's size.
 */
class Sizes {
  readonly lengths: number[] = [];

  struct(json: JsonObject): number {
    let size = 0;
    for (const key of Object.keys(json)) {
      const at = this.lengths.push(0, 0, 0) - 3;
      const keyBytes = Buffer.byteLength(key, "utf8");
      const value = this.value(json[key]!);
      const entry = 1 + delimited(keyBytes) + 1 + delimited(value);
      this.lengths[at] = entry;
      this.lengths[at + 1] = keyBytes;
      this.lengths[at + 2] = value;
      size += 1 + delimited(entry);
    }
    return size;
  }

  /** A Value message's body. */
  value(json: JsonValue): number {
    if (json === null) return 2;
    switch (typeof json) {
      case "number":
        return 9;
      case "boolean":
        return 2;
      case "string": {
        const bytes = Buffer.byteLength(json, "utf8");
        this.lengths.push(bytes);
        return 1 + delimited(bytes);
      }
    }
    const at = this.lengths.push(0) - 1;
    const body = Array.isArray(json) ? this.list(json) : this.struct(json as JsonObject);
    this.lengths[at] = body;
    return 1 + delimited(body);
  }

  private list(items: readonly JsonValue[]): number {
    let size = 0;
    for (const item of items) {
      const at = this.lengths.push(0) - 1;
      const value = this.value(item);
      this.lengths[at] = value;
      size += 1 + delimited(value);
    }
    return size;
  }
}

/** The second pass: writes into `buffer`, taking each length from the first pass in order. */
class Writer {
  private at = 0;
  private next = 0;

  constructor(
    private readonly buffer: Buffer,
    private readonly lengths: readonly number[],
  ) {}

  get written(): number {
    return this.at;
  }

  struct(json: JsonObject): void {
    for (const key of Object.keys(json)) {
      this.byte(FIELD_1_LD).varint(this.lengths[this.next++]!);
      this.byte(FIELD_1_LD).varint(this.lengths[this.next++]!);
      this.at += this.buffer.write(key, this.at, "utf8");
      this.byte(FIELD_2_LD).varint(this.lengths[this.next++]!);
      this.value(json[key]!);
    }
  }

  private value(json: JsonValue): void {
    if (json === null) {
      this.byte(NULL_TAG).byte(0);
      return;
    }
    switch (typeof json) {
      case "number":
        this.byte(NUMBER_TAG);
        this.at = this.buffer.writeDoubleLE(json, this.at);
        return;
      case "boolean":
        this.byte(BOOL_TAG).byte(json ? 1 : 0);
        return;
      case "string":
        this.byte(STRING_TAG).varint(this.lengths[this.next++]!);
        this.at += this.buffer.write(json, this.at, "utf8");
        return;
    }
    const body = this.lengths[this.next++]!;
    if (Array.isArray(json)) {
      this.byte(LIST_TAG).varint(body);
      for (const item of json) {
        this.byte(FIELD_1_LD).varint(this.lengths[this.next++]!);
        this.value(item);
      }
      return;
    }
    this.byte(STRUCT_TAG).varint(body);
    this.struct(json as JsonObject);
  }

  private byte(b: number): this {
    this.buffer[this.at++] = b;
    return this;
  }

  private varint(n: number): this {
    while (n > 0x7f) {
      this.buffer[this.at++] = (n & 0x7f) | 0x80;
      n >>>= 7;
    }
    this.buffer[this.at++] = n;
    return this;
  }
}

/** The bytes of a Struct message holding `json` (its fields, no tag or length of its own). */
export function encodeStructBody(json: JsonObject): Uint8Array {
  const sizes = new Sizes();
  const size = sizes.struct(json);
  const buffer = Buffer.allocUnsafe(size);
  const writer = new Writer(buffer, sizes.lengths);
  writer.struct(json);
  if (writer.written !== size) throw new Error(`struct encoding wrote ${writer.written} of ${size} bytes`);
  return buffer;
}
