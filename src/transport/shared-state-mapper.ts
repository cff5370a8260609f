/** SharedState, proto ⇄ domain: Struct variables, resources by name, dependencies, goals. */
import { create } from "@bufbuild/protobuf";
import {
  DependencyStatusSchema,
  DependencyTypeSchema,
  GoalStatusSchema,
  ResourceStatusSchema,
  SharedStateSchema,
  type SharedState as ProtoSharedState,
} from "../../gen/mplp/context/v1/shared_state_pb.js";
import { PrioritySchema } from "../../gen/mplp/context/v1/priority_pb.js";
import type { SharedStateInput } from "../domain/shared-state-validation.js";
import type { SharedState } from "../domain/shared-state.js";
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
