/**
 * GetSharedState's and UpdateSharedState's answers, encoded by hand around the state's own
 * encoding, which is made once per state object: a cached read answers the read cache's same object
 * until the state changes (states are never changed in place), and a write's new state is the one
 * the next reads get; mapping and encoding a state reflectively was most of such a call's CPU.
 * Equal to toBinary byte for byte (test/unit/transport/shared-state-encoding.test.ts).
 */
import { toBinary } from "@bufbuild/protobuf";
import {
  GetSharedStateResponseSchema,
  UpdateSharedStateResponseSchema,
  type GetSharedStateResponse,
  type UpdateSharedStateResponse,
} from "../../gen/mplp/context/v1/context_service_pb.js";
import { SharedStateSchema, type SharedState as ProtoSharedState } from "../../gen/mplp/context/v1/shared_state_pb.js";
import type { SharedState } from "../domain/shared-state.js";
import { BinaryWriter, LD, textField, WireType } from "./message-writer.js";
import { oncePerObject } from "./once-per-object.js";
import { sharedStateOut } from "./shared-state-mapper.js";

/** sharedStateOut, the same message object for the same state object. */
export const sharedStateMessage: (state: SharedState) => ProtoSharedState = oncePerObject(sharedStateOut);

const encodeState = oncePerObject((message: ProtoSharedState): Uint8Array => toBinary(SharedStateSchema, message));

const F = GetSharedStateResponseSchema.field;

/** toBinary(GetSharedStateResponseSchema, m), byte for byte. */
export function encodeGetSharedStateResponse(m: GetSharedStateResponse): Uint8Array {
  const w = new BinaryWriter();
  if (m.sharedState !== undefined) w.tag(F.sharedState.number, LD).bytes(encodeState(m.sharedState));
  if (m.revision !== 0n) w.tag(F.revision.number, WireType.Varint).int64(m.revision);
  textField(w, F.checksum.number, m.checksum);
  return w.finish();
}

const U = UpdateSharedStateResponseSchema.field;

/** toBinary(UpdateSharedStateResponseSchema, m), byte for byte (its fields in another order than GetSharedState's). */
export function encodeUpdateSharedStateResponse(m: UpdateSharedStateResponse): Uint8Array {
  const w = new BinaryWriter();
  if (m.revision !== 0n) w.tag(U.revision.number, WireType.Varint).int64(m.revision);
  if (m.sharedState !== undefined) w.tag(U.sharedState.number, LD).bytes(encodeState(m.sharedState));
  textField(w, U.checksum.number, m.checksum);
  return w.finish();
}
