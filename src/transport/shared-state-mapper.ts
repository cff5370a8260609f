/**
 * SharedState, proto ⇄ domain: Struct variables, resources by name, dependencies, goals; and the
 * StateChange / StateChangeSet of UpdateSharedState and its STATE_CHANGED events.
 */
import { create } from "@bufbuild/protobuf";
import { FieldMaskSchema } from "@bufbuild/protobuf/wkt";
import { StateChangeSetSchema, type StateChangeSet as ProtoStateChangeSet } from "../../gen/mplp/context/v1/event_pb.js";
import {
  DependencyStatusSchema,
  DependencyTypeSchema,
  GoalStatusSchema,
  ResourceStatusSchema,
  SharedStateSchema,
  StateChangeSchema,
  StateOperationSchema,
  type SharedState as ProtoSharedState,
  type StateChange as ProtoStateChange,
} from "../../gen/mplp/context/v1/shared_state_pb.js";
import { PrioritySchema } from "../../gen/mplp/context/v1/priority_pb.js";
import type { SharedStateInput } from "../domain/shared-state-validation.js";
import { emptySharedState, REPLACEABLE_PARTS, type SharedState, type StateChange, type StateChangeSet } from "../domain/shared-state.js";
import type { StateChangeInput } from "../domain/state-changes.js";
import { enumIn, enumOut, valueIn, valueOut } from "./proto-values.js";

/** Shared state as a client sent it, enums as unchecked strings for domain validation. */
export function sharedStateIn(state: ProtoSharedState): SharedStateInput {
  return {
    variables: state.variables ?? {},
    resources: Object.fromEntries(
      Object.entries(state.resources).map(([name, r]) => [
        name,
        { type: r.type, amount: r.amount, unit: r.unit, status: enumIn(ResourceStatusSchema, r.status) },
      ]),
    ),
    dependencies: state.dependencies.map((d) => ({
      id: d.id,
      type: enumIn(DependencyTypeSchema, d.type),
      name: d.name,
      version: d.version,
      status: enumIn(DependencyStatusSchema, d.status),
    })),
    goals: state.goals.map((g) => ({
      id: g.id,
      name: g.name,
      description: g.description,
      priority: enumIn(PrioritySchema, g.priority),
      status: enumIn(GoalStatusSchema, g.status),
      successCriteria: g.successCriteria.map((c) => ({
        metric: c.metric,
        operator: c.operator,
        value: valueIn(c.value),
        unit: c.unit,
      })),
    })),
  };
}

/** Domain shared state as the proto message; null enum values go out unset. */
export function sharedStateOut(state: SharedState): ProtoSharedState {
  return create(SharedStateSchema, {
    variables: state.variables,
    resources: Object.fromEntries(
      Object.entries(state.resources).map(([name, r]) => [
        name,
        { type: r.type, amount: r.amount, unit: r.unit, status: enumOut(ResourceStatusSchema, r.status) },
      ]),
    ),
    dependencies: state.dependencies.map((d) => ({
      id: d.id,
      type: enumOut(DependencyTypeSchema, d.type),
      name: d.name,
      version: d.version,
      status: enumOut(DependencyStatusSchema, d.status),
    })),
    goals: state.goals.map((g) => ({
      id: g.id,
      name: g.name,
      description: g.description,
      priority: enumOut(PrioritySchema, g.priority),
      status: enumOut(GoalStatusSchema, g.status),
      successCriteria: g.successCriteria.map((c) => ({
        metric: c.metric,
        operator: c.operator,
        value: valueOut(c.value),
        unit: c.unit,
      })),
    })),
  });
}

/** A StateChange as sent: operation unchecked (UNSPECIFIED → undefined, rejected by validation), an unset value kept apart from null. */
export function stateChangeIn(change: ProtoStateChange): StateChangeInput {
  const operation = enumIn(StateOperationSchema, change.operation);
  return change.value === undefined ? { operation, path: change.path } : { operation, path: change.path, value: valueIn(change.value) };
}

/** A domain change as the proto message (DELETE carries no value). */
export function stateChangeOut(change: StateChange): ProtoStateChange {
  return create(StateChangeSchema, {
    operation: enumOut(StateOperationSchema, change.operation),
    path: change.path,
    ...(change.operation === "SET" ? { value: valueOut(change.value) } : {}),
  });
}

/**
 * A STATE_CHANGED payload as the proto message: the changes, the replaced parts only (the rest of
 * `replace` left empty) and an update_mask naming them. The checksum has no field on the wire;
 * GetSharedState gives it for any retained revision.
 */
export function stateChangeSetOut(set: StateChangeSet): ProtoStateChangeSet {
  const parts = REPLACEABLE_PARTS.filter((p) => set.replace[p] !== undefined);
  return create(StateChangeSetSchema, {
    changes: set.changes.map(stateChangeOut),
    ...(parts.length > 0
      ? { replace: sharedStateOut({ ...emptySharedState(), ...set.replace }), updateMask: create(FieldMaskSchema, { paths: parts }) }
      : {}),
  });
}
