/**
 * GetSharedState's and UpdateSharedState's answers, encoded by hand, the state's own encoding made
 * once per state object: a cached read answers the read cache's same object until the state
 * changes (states are never changed in place), and a write's new state is the one the next reads
 * get. The state is encoded by hand too: toBinary's reflective walk of its Struct was ~4 % of an
 * UpdateSharedState's server CPU for a state of two variables.
 * Equal to toBinary byte for byte (test/unit/transport/shared-state-encoding.test.ts).
 */
import { toBinary } from "@bufbuild/protobuf";
import {
  GetSharedStateResponseSchema,
  UpdateSharedStateResponseSchema,
  type GetSharedStateResponse,
  type UpdateSharedStateResponse,
} from "../../gen/mplp/context/v1/context_service_pb.js";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import {
  DependencySchema,
  GoalSchema,
  ResourceSchema,
  SharedStateSchema,
  SuccessCriterionSchema,
  type SharedState as ProtoSharedState,
} from "../../gen/mplp/context/v1/shared_state_pb.js";
import type { SharedState } from "../domain/shared-state.js";
import { BinaryWriter, LD, structField, textField, varintField, WireType } from "./message-writer.js";
import { oncePerObject } from "./once-per-object.js";
import { sharedStateOut } from "./shared-state-mapper.js";

/** sharedStateOut, the same message object for the same state object. */
export const sharedStateMessage: (state: SharedState) => ProtoSharedState = oncePerObject(sharedStateOut);

const S = SharedStateSchema.field;
const R = ResourceSchema.field;
const D = DependencySchema.field;
const G = GoalSchema.field;
const C = SuccessCriterionSchema.field;

/** toBinary(SharedStateSchema, m), byte for byte (its fields in number order). */
export function encodeSharedState(m: ProtoSharedState): Uint8Array {
  const w = new BinaryWriter();
  structField(w, S.variables.number, m.variables);
  for (const [name, r] of Object.entries(m.resources)) {
    w.tag(S.resources.number, LD).fork().tag(1, LD).string(name).tag(2, LD).fork();
    textField(w, R.type.number, r.type);
    // As toBinary: +0 is the default and left out, -0 is written.
    if (!Object.is(r.amount, 0)) w.tag(R.amount.number, WireType.Bit64).double(r.amount);
    textField(w, R.unit.number, r.unit);
    varintField(w, R.status.number, r.status);
    w.join().join();
  }
  for (const d of m.dependencies) {
    w.tag(S.dependencies.number, LD).fork();
    textField(w, D.id.number, d.id);
    varintField(w, D.type.number, d.type);
    textField(w, D.name.number, d.name);
    textField(w, D.version.number, d.version);
    varintField(w, D.status.number, d.status);
    w.join();
  }
  for (const g of m.goals) {
    w.tag(S.goals.number, LD).fork();
    textField(w, G.id.number, g.id);
    textField(w, G.name.number, g.name);
    textField(w, G.description.number, g.description);
    varintField(w, G.priority.number, g.priority);
    varintField(w, G.status.number, g.status);
    for (const c of g.successCriteria) {
      w.tag(G.successCriteria.number, LD).fork();
      textField(w, C.metric.number, c.metric);
      textField(w, C.operator.number, c.operator);
      // A criterion's value is a Value message (rare enough for the reflective encoder).
      if (c.value !== undefined) w.tag(C.value.number, LD).bytes(toBinary(ValueSchema, c.value));
      textField(w, C.unit.number, c.unit);
      w.join();
    }
    w.join();
  }
  return w.finish();
}

/** encodeSharedState once per message: the read cache's state answers many reads. */
const encodeState = oncePerObject(encodeSharedState);

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
