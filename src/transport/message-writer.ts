/**
 * Field writers for the hand-written encoders (context-encoding.ts, participant-encoding.ts),
 * each writing what protobuf-es's toBinary writes for that kind of field: proto3 defaults left
 * out, a set message field written even when empty.
 */
import type { JsonObject } from "@bufbuild/protobuf";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";

import { encodeStructBody } from "./struct-encoding.js";

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

/** A google.protobuf.Struct field (protobuf-es holds it as plain JSON), when set — even when empty. */
export function structField(w: BinaryWriter, field: number, json: JsonObject | undefined): void {
  if (json !== undefined) w.tag(field, LD).bytes(encodeStructBody(json));
}
