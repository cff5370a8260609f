/**
 * GetSharedState's answer, encoded by hand around the state's own encoding, which is made once per
 * state object: a cached read answers the read cache's same object until the state changes
 * (states are never changed in place), and mapping and encoding a state reflectively was most of
 * such a call's CPU. Equal to toBinary byte for byte (test/unit/transport/shared-state-encoding.test.ts).
 */
import { toBinary } from "@bufbuild/protobuf";
import { GetSharedStateResponseSchema, type GetSharedStateResponse } from "../../gen/mplp/context/v1/context_service_pb.js";
import { SharedStateSchema, type SharedState as ProtoSharedState } from "../../gen/mplp/context/v1/shared_state_pb.js";
import type { SharedState } from "../domain/shared-state.js";
import { BinaryWriter, LD, textField, WireType } from "./message-writer.js";
import { sharedStateOut } from "./shared-state-mapper.js";

const mapped = new WeakMap<SharedState, ProtoSharedState>();
const encoded = new WeakMap<ProtoSharedState, Uint8Array>();

/** sharedStateOut, the same message object for the same state object. */
export function sharedStateMessage(state: SharedState): ProtoSharedState {
  let message = mapped.get(state);
  if (message === undefined) {
    message = sharedStateOut(state);
    mapped.set(state, message);
  }
  return message;
}

function encodeState(message: ProtoSharedState): Uint8Array {
  let bytes = encoded.get(message);
  if (bytes === undefined) {
    bytes = toBinary(SharedStateSchema, message);
    encoded.set(message, bytes);
  }
  return bytes;
}

const F = GetSharedStateResponseSchema.field;

/** toBinary(GetSharedStateResponseSchema, m), byte for byte. */
export function encodeGetSharedStateResponse(m: GetSharedStateResponse): Uint8Array {
  const w = new BinaryWriter();
  if (m.sharedState !== undefined) w.tag(F.sharedState.number, LD).bytes(encodeState(m.sharedState));
  if (m.revision !== 0n) w.tag(F.revision.number, WireType.Varint).int64(m.revision);
  textField(w, F.checksum.number, m.checksum);
  return w.finish();
}
