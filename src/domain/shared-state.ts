/** The shared state of a context: what its agents read and change together. */
import type { JsonObject, JsonValue } from "./json.js";
import type { Priority } from "./priority.js";

export const RESOURCE_STATUSES = ["AVAILABLE", "ALLOCATED", "EXHAUSTED"] as const;
export type ResourceStatus = (typeof RESOURCE_STATUSES)[number];

export const DEPENDENCY_TYPES = ["CONTEXT", "PLAN", "EXTERNAL"] as const;
export type DependencyType = (typeof DEPENDENCY_TYPES)[number];

export const DEPENDENCY_STATUSES = ["PENDING", "RESOLVED", "FAILED"] as const;
export type DependencyStatus = (typeof DEPENDENCY_STATUSES)[number];

export const GOAL_STATUSES = ["DEFINED", "ACTIVE", "ACHIEVED", "ABANDONED"] as const;
export type GoalStatus = (typeof GOAL_STATUSES)[number];

export interface Resource {
  readonly type: string;
  readonly amount: number;
  readonly unit: string;
  readonly status: ResourceStatus | null;
}

export interface Dependency {
  readonly id: string;
  readonly type: DependencyType | null;
  readonly name: string;
  readonly version: string;
  readonly status: DependencyStatus | null;
}

export interface SuccessCriterion {
  readonly metric: string;
  readonly operator: string;
  readonly value: JsonValue;
  readonly unit: string;
}

export interface Goal {
  readonly id: string;
  readonly name: string;
  readonly description: string;
  readonly priority: Priority | null;
  readonly status: GoalStatus | null;
  readonly successCriteria: readonly SuccessCriterion[];
}

export interface SharedState {
  readonly variables: JsonObject;
  readonly resources: Readonly<Record<string, Resource>>;
  readonly dependencies: readonly Dependency[];
  readonly goals: readonly Goal[];
}

export function emptySharedState(): SharedState {
  return { variables: {}, resources: {}, dependencies: [], goals: [] };
}

/** One ordered change to `variables`, at a dotted path ("plan.step"). */
export type StateChange =
  | { readonly operation: "SET"; readonly path: string; readonly value: JsonValue }
  | { readonly operation: "DELETE"; readonly path: string };

/** The parts of shared state UpdateSharedState replaces whole, named by its update_mask. */
export const REPLACEABLE_PARTS = ["resources", "dependencies", "goals"] as const;
export type ReplaceablePart = (typeof REPLACEABLE_PARTS)[number];

/** What one UpdateSharedState applied: the payload of its STATE_CHANGED event, enough to replay it. */
export interface StateChangeSet {
  readonly changes: readonly StateChange[];
  /** Each replaced part's new value (only the parts named in the mask). */
  readonly replace: Partial<Pick<SharedState, ReplaceablePart>>;
  /** The state's checksum after the change. */
  readonly checksum: string;
}
