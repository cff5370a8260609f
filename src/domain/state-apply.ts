/**
 * Applying UpdateSharedState's changes to a shared state. The same code serves the update itself
 * and every read of an older revision (a snapshot plus the STATE_CHANGED events after it), so a
 * replay reproduces exactly the state, and the checksum, that the update produced.
 */
import type { JsonObject, JsonValue } from "./json.js";
import { REPLACEABLE_PARTS, type SharedState, type StateChange, type StateChangeSet } from "./shared-state.js";

/** What a change set applies: its checksum is the result's, so it is not needed here. */
export type StateEdit = Pick<StateChangeSet, "changes" | "replace">;

/** The segments of a dotted path ("plan.step" → ["plan", "step"]); validation made them non-empty. */
export function pathSegments(path: string): string[] {
  return path.split(".");
}

function isObject(value: JsonValue | undefined): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** An own property only: a key like "__proto__" or "constructor" must never reach the prototype. */
function own(object: JsonObject, key: string): JsonValue | undefined {
  return Object.hasOwn(object, key) ? object[key] : undefined;
}

/** Defines an own data property, which even "__proto__" becomes (plain assignment would set the prototype). */
function put(object: JsonObject, key: string, value: JsonValue): void {
  Object.defineProperty(object, key, { value, writable: true, enumerable: true, configurable: true });
}

/**
 * SET walks the path creating objects, replacing any non-object (scalar, array, null) met on the
 * way; DELETE removes the last key when the whole path exists and is a no-op otherwise.
 * Mutates `variables`, which the caller owns (a private copy).
 */
function applyChange(variables: JsonObject, change: StateChange): void {
  const segments = pathSegments(change.path);
  const last = segments.pop() as string;
  let at = variables;
  for (const segment of segments) {
    const next = own(at, segment);
    if (isObject(next)) {
      at = next;
    } else if (change.operation === "DELETE") {
      return;
    } else {
      const created: JsonObject = {};
      put(at, segment, created);
      at = created;
    }
  }
  if (change.operation === "SET") {
    // A copy: the value also lives in the change set (the event payload), and a later SET into it
    // must not edit history.
    put(at, last, structuredClone(change.value));
  } else if (Object.hasOwn(at, last)) {
    delete at[last];
  }
}

/** Applies one edit to a state the caller owns: variables in place, replaced parts swapped whole. */
function applyInPlace(state: { variables: JsonObject } & Omit<SharedState, "variables">, edit: StateEdit): void {
  for (const change of edit.changes) applyChange(state.variables, change);
  for (const part of REPLACEABLE_PARTS) {
    const replacement = edit.replace[part];
    if (replacement !== undefined) (state as Record<string, unknown>)[part] = replacement;
  }
}

function mutableCopy(state: SharedState): { variables: JsonObject } & Omit<SharedState, "variables"> {
  return {
    variables: structuredClone(state.variables),
    resources: state.resources,
    dependencies: state.dependencies,
    goals: state.goals,
  };
}

/**
 * The state after `edit`: its changes in order on variables, then its replaced parts. Pure: the
 * input state is left as it was (the parts not replaced are shared, not copied; they are read-only).
 */
export function applyChangeSet(state: SharedState, edit: StateEdit): SharedState {
  return replayChangeSets(state, [edit]);
}

/** The state after every edit in order; applyChangeSet repeated, copying the variables once. */
export function replayChangeSets(state: SharedState, edits: readonly StateEdit[]): SharedState {
  const draft = mutableCopy(state);
  for (const edit of edits) applyInPlace(draft, edit);
  return draft;
}
