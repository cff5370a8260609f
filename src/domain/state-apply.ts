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
 * Mutates `variables` and the objects in `owned` (the draft's), and copies any other object on the
 * path before going into it: what the draft shares with the input state is never changed.
 */
function applyChange(variables: JsonObject, change: StateChange, owned: Set<JsonObject>): void {
  const segments = pathSegments(change.path);
  const last = segments.pop() as string;
  // A DELETE of what is not there changes nothing, and copies nothing on its way.
  if (change.operation === "DELETE" && !holds(variables, segments, last)) return;
  let at = variables;
  for (const segment of segments) {
    const next = own(at, segment);
    // A DELETE reaches here only along a path that holds() found whole: every step is an object.
    if (isObject(next)) {
      at = owned.has(next) ? next : ownedCopy(at, segment, next, owned);
    } else {
      const created: JsonObject = {};
      put(at, segment, created);
      owned.add(created);
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

/** Whether the object at `segments` exists and has its own `last`. */
function holds(variables: JsonObject, segments: readonly string[], last: string): boolean {
  let at: JsonValue | undefined = variables;
  for (const segment of segments) {
    if (!isObject(at)) return false;
    at = own(at, segment);
  }
  return isObject(at) && Object.hasOwn(at, last);
}

/** `child` (at `parent[key]`) copied one level deep into the draft, and put in its place. */
function ownedCopy(parent: JsonObject, key: string, child: JsonObject, owned: Set<JsonObject>): JsonObject {
  // Spread defines own data properties, "__proto__" included, in the same order.
  const copy: JsonObject = { ...child };
  put(parent, key, copy);
  owned.add(copy);
  return copy;
}

/** Applies one edit to the draft: variables in place, replaced parts swapped whole. */
function applyInPlace(state: Draft, edit: StateEdit): void {
  for (const change of edit.changes) applyChange(state.variables, change, state.owned);
  for (const part of REPLACEABLE_PARTS) {
    const replacement = edit.replace[part];
    if (replacement !== undefined) (state as unknown as Record<string, unknown>)[part] = replacement;
  }
}

/**
 * A state being edited, sharing all it can with the one it started from: variables copied one level
 * deep, and deeper objects only once a change goes into them (a copy of the whole tree per update
 * was most of a large state's update).
 */
interface Draft {
  variables: JsonObject;
  resources: SharedState["resources"];
  dependencies: SharedState["dependencies"];
  goals: SharedState["goals"];
  /** The objects of `variables` made for this draft, which it may change in place. */
  readonly owned: Set<JsonObject>;
}

function draftOf(state: SharedState): Draft {
  const variables: JsonObject = { ...state.variables };
  return { variables, resources: state.resources, dependencies: state.dependencies, goals: state.goals, owned: new Set([variables]) };
}

/**
 * The state after `edit`: its changes in order on variables, then its replaced parts. Pure: the
 * input state is left as it was (what did not change is shared with it, not copied: read-only).
 */
export function applyChangeSet(state: SharedState, edit: StateEdit): SharedState {
  return replayChangeSets(state, [edit]);
}

/** The state after every edit in order; applyChangeSet repeated, each object on a path copied once. */
export function replayChangeSets(state: SharedState, edits: readonly StateEdit[]): SharedState {
  const draft = draftOf(state);
  for (const edit of edits) applyInPlace(draft, edit);
  return { variables: draft.variables, resources: draft.resources, dependencies: draft.dependencies, goals: draft.goals };
}
