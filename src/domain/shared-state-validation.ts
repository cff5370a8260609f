/** Checks shared state supplied by a client: on create, and the `replace` parts of UpdateSharedState. */
import type { JsonObject, JsonValue } from "./json.js";
import { PRIORITIES } from "./priority.js";
import { LIMITS } from "./limits.js";
import {
  DEPENDENCY_STATUSES,
  DEPENDENCY_TYPES,
  GOAL_STATUSES,
  RESOURCE_STATUSES,
  type SharedState,
} from "./shared-state.js";
import { jsonByteLength } from "./json.js";
import type { Violations } from "./validation.js";

/** Shared state as it arrives: enum values unchecked (undefined = not set). */
export interface SharedStateInput {
  readonly variables?: JsonObject;
  readonly resources?: Readonly<
    Record<string, { type: string; amount: number; unit: string; status?: string }>
  >;
  readonly dependencies?: readonly {
    id: string;
    type?: string;
    name: string;
    version: string;
    status?: string;
  }[];
  readonly goals?: readonly {
    id: string;
    name: string;
    description: string;
    priority?: string;
    status?: string;
    successCriteria: readonly { metric: string; operator: string; value: JsonValue; unit: string }[];
  }[];
}

const short = { max: LIMITS.stateItemChars } as const;

function optionalEnum<T extends string>(
  v: Violations,
  field: string,
  value: string | undefined,
  allowed: readonly T[],
): T | null {
  return value === undefined ? null : v.oneOf(field, value, allowed);
}

/**
 * Validates and normalizes shared state; `field` is its path in the request. `maxBytes` is the
 * configured SHARED_STATE_MAX_BYTES, so creation and UpdateSharedState enforce the same limit.
 */
export function validateSharedState(
  v: Violations,
  field: string,
  input: SharedStateInput,
  maxBytes: number = LIMITS.sharedStateBytes,
): SharedState {
  const variables = input.variables ?? {};
  v.json(`${field}.variables`, variables, maxBytes, LIMITS.jsonDepth);

  const resourceEntries = Object.entries(input.resources ?? {});
  if (resourceEntries.length > LIMITS.stateItems) {
    v.add(`${field}.resources`, `must have at most ${LIMITS.stateItems} entries`);
  }
  const resources: SharedState["resources"] = Object.fromEntries(
    resourceEntries.slice(0, LIMITS.stateItems).map(([name, r]) => {
      const at = `${field}.resources[${JSON.stringify(name)}]`;
      v.text(`${at}`, name, { min: 1, ...short });
      v.text(`${at}.type`, r.type, short);
      v.text(`${at}.unit`, r.unit, short);
      if (!Number.isFinite(r.amount)) v.add(`${at}.amount`, "must be a finite number");
      const status = optionalEnum(v, `${at}.status`, r.status, RESOURCE_STATUSES);
      return [name, { type: r.type, amount: r.amount, unit: r.unit, status }];
    }),
  );

  const deps = input.dependencies ?? [];
  if (deps.length > LIMITS.stateItems) v.add(`${field}.dependencies`, `must have at most ${LIMITS.stateItems} entries`);
  const dependencies = deps.slice(0, LIMITS.stateItems).map((d, i) => {
    const at = `${field}.dependencies[${i}]`;
    v.text(`${at}.id`, d.id, { min: 1, ...short });
    v.text(`${at}.name`, d.name, short);
    v.text(`${at}.version`, d.version, short);
    return {
      id: d.id,
      type: optionalEnum(v, `${at}.type`, d.type, DEPENDENCY_TYPES),
      name: d.name,
      version: d.version,
      status: optionalEnum(v, `${at}.status`, d.status, DEPENDENCY_STATUSES),
    };
  });
  uniqueIds(v, `${field}.dependencies`, dependencies);

  const goalInputs = input.goals ?? [];
  if (goalInputs.length > LIMITS.stateItems) v.add(`${field}.goals`, `must have at most ${LIMITS.stateItems} entries`);
  const goals = goalInputs.slice(0, LIMITS.stateItems).map((g, i) => {
    const at = `${field}.goals[${i}]`;
    v.text(`${at}.id`, g.id, { min: 1, ...short });
    v.text(`${at}.name`, g.name, short);
    v.text(`${at}.description`, g.description, { max: LIMITS.descriptionChars, multiline: true });
    g.successCriteria.forEach((c, j) => {
      v.text(`${at}.success_criteria[${j}].metric`, c.metric, short);
      v.text(`${at}.success_criteria[${j}].operator`, c.operator, short);
      v.text(`${at}.success_criteria[${j}].unit`, c.unit, short);
      v.json(`${at}.success_criteria[${j}].value`, c.value, LIMITS.customDataBytes, LIMITS.jsonDepth);
    });
    return {
      id: g.id,
      name: g.name,
      description: g.description,
      priority: optionalEnum(v, `${at}.priority`, g.priority, PRIORITIES),
      status: optionalEnum(v, `${at}.status`, g.status, GOAL_STATUSES),
      successCriteria: g.successCriteria.map((c) => ({ ...c })),
    };
  });
  uniqueIds(v, `${field}.goals`, goals);

  const state: SharedState = { variables, resources, dependencies, goals };
  if (v.empty) {
    const bytes = jsonByteLength(state);
    if (bytes > maxBytes) {
      v.add(field, `must be at most ${maxBytes} bytes as JSON (got ${bytes})`);
    }
  }
  return state;
}

function uniqueIds(v: Violations, field: string, items: readonly { id: string }[]): void {
  const seen = new Set<string>();
  items.forEach((item, i) => {
    if (seen.has(item.id)) v.add(`${field}[${i}].id`, `repeats "${item.id}"`);
    seen.add(item.id);
  });
}
