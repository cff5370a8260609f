/**
 * Plain JSON in and out of shared state, so agents need not build `google.protobuf.Value`s by
 * hand: `setVar("plan.step", 2)`, `deleteVar("draft")`, and `variablesOf(state)` → a plain object.
 */
import { fromJson, type JsonObject, type JsonValue } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import { StateOperation, type SharedState } from "../../gen/mplp/context/v1/shared_state_pb.js";
import type { StateChangeInit } from "./client.js";

/** SET `value` (any JSON) at the dotted `path` of `variables`. */
export function setVar(path: string, value: JsonValue): StateChangeInit {
  return { operation: StateOperation.SET, path, value: fromJson(ValueSchema, value) };
}

/** DELETE the dotted `path` of `variables`. */
export function deleteVar(path: string): StateChangeInit {
  return { operation: StateOperation.DELETE, path };
}

/** The `variables` of a shared state as plain JSON ({} when there are none). */
export function variablesOf(state: SharedState | undefined): JsonObject {
  // protobuf-es already represents a Struct field as a plain JSON object.
  return state?.variables ?? {};
}
