/**
 * Field writers for the hand-written encoders (context-encoding.ts, participant-encoding.ts),
 * each writing what protobuf-es's toBinary writes for that kind of field: proto3 defaults left
 * out, a set message field written even when empty.
 */
import type { JsonObject, JsonValue } from "@bufbuild/protobuf";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";

export { BinaryWriter, WireType };

export const LD = WireType.LengthDelimited;

/** A google.protobuf.Timestamp field, when set. */
export function timestampField(w: BinaryWriter, field: number, t: Timestamp | undefined): void {
  if (t === undefined) return;
  w.tag(field, LD).fork();
  if (t.seconds !== 0n) w.tag(1, WireType.Varint).int64(t.seconds);
  if (t.nanos !== 0) w.tag(2, WireType.Varint).int32(t.nanos);
  w.join();
}

/** An int32 or enum field without presence. */
export function varintField(w: BinaryWriter, field: number, value: number): void {
  if (value !== 0) w.tag(field, WireType.Varint).int32(value);
}

/** A string field without presence. */
export function textField(w: BinaryWriter, field: number, value: string): void {
  if (value !== "") w.tag(field, LD).string(value);
}

/** A repeated string field: one tagged string per value. */
export function textsField(w: BinaryWriter, field: number, values: readonly string[]): void {
  for (const v of values) w.tag(field, LD).string(v);
}

/**
 * A google.protobuf.Struct field (protobuf-es holds it as plain JSON), when set — even when empty —
 * written as toBinary writes it (a map entry per key in the object's key order, then each Value's
 * one kind), without its reflective walk through a Struct message built for the purpose.
 */
export function structField(w: BinaryWriter, field: number, json: JsonObject | undefined): void {
  if (json === undefined) return;
  w.tag(field, LD).fork();
  structBody(w, json);
  w.join();
}

/** google.protobuf.Struct's fields: `map<string, Value> fields = 1`. */
function structBody(w: BinaryWriter, json: JsonObject): void {
  for (const key of Object.keys(json)) {
    w.tag(1, LD).fork().tag(1, LD).string(key).tag(2, LD).fork();
    valueBody(w, json[key]!);
    w.join().join();
  }
}

/** google.protobuf.Value's one kind: null 1, number 2, string 3, bool 4, struct 5, list 6 (`repeated Value values = 1`). */
function valueBody(w: BinaryWriter, json: JsonValue): void {
  if (json === null) {
    w.tag(1, WireType.Varint).int32(0);
    return;
  }
  switch (typeof json) {
    case "number":
      w.tag(2, WireType.Bit64).double(json);
      return;
    case "string":
      w.tag(3, LD).string(json);
      return;
    case "boolean":
      w.tag(4, WireType.Varint).bool(json);
      return;
  }
  if (Array.isArray(json)) {
    w.tag(6, LD).fork();
    for (const item of json) {
      w.tag(1, LD).fork();
      valueBody(w, item);
      w.join();
    }
    w.join();
    return;
  }
  w.tag(5, LD).fork();
  structBody(w, json as JsonObject);
  w.join();
}
