/**
 * Checks an UpdateSharedState request before any database work: the ordered SET/DELETE changes on
 * dotted paths into variables, and the parts of shared state replaced whole (update_mask). Every
 * bad field is named as the client wrote it (`changes[3].path`, `replace.goals[0].id`).
 */
import type { JsonValue } from "./json.js";
import { LIMITS } from "./limits.js";
import { validateSharedState, type SharedStateInput } from "./shared-state-validation.js";
import { REPLACEABLE_PARTS, type ReplaceablePart, type StateChange } from "./shared-state.js";
import type { StateEdit } from "./state-apply.js";
import { charLength, Violations } from "./validation.js";

const CONTROL = /[\u0000-\u001f\u007f]/;

/** One change as it arrives: operation unchecked (undefined = not set), value undefined = not sent. */
export interface StateChangeInput {
  readonly operation: string | undefined;
  readonly path: string;
  readonly value?: JsonValue;
}

/** UpdateSharedState's body as it arrives (ids and expected_revision are the service's to check). */
export interface StateUpdateInput {
  readonly changes: readonly StateChangeInput[];
  /** undefined when the client sent no `replace`. */
  readonly replace?: SharedStateInput;
  readonly updateMask: readonly string[];
  readonly requestId: string;
}

/** A checked update: what to apply, and the idempotency key ("" = none). */
export interface ValidStateUpdate {
  readonly edit: StateEdit;
  readonly requestId: string;
}

/** Checks a dotted path; returns its segment count, or 0 when it is bad (the violation is added). */
export function checkStatePath(v: Violations, field: string, path: string): number {
  if (path === "") {
    v.add(field, "is required");
    return 0;
  }
  const segments = path.split(".");
  if (segments.length > LIMITS.statePathSegments) {
    v.add(field, `must have at most ${LIMITS.statePathSegments} dot-separated segments (got ${segments.length})`);
    return 0;
  }
  for (const [i, segment] of segments.entries()) {
    const problem =
      segment === ""
        ? "is empty"
        : charLength(segment) > LIMITS.stateSegmentChars
          ? `is longer than ${LIMITS.stateSegmentChars} characters`
          : CONTROL.test(segment)
            ? "contains control characters"
            : undefined;
    if (problem !== undefined) {
      v.add(field, `segment ${i + 1} ${problem}`);
      return 0;
    }
  }
  return segments.length;
}

function checkChange(v: Violations, field: string, input: StateChangeInput, maxBytes: number): StateChange | undefined {
  const operation = v.oneOf(`${field}.operation`, input.operation, ["SET", "DELETE"] as const);
  const operationOk = input.operation === "SET" || input.operation === "DELETE";
  const depth = checkStatePath(v, `${field}.path`, input.path);
  if (!operationOk) return undefined;
  if (operation === "DELETE") {
    if (input.value !== undefined) v.add(`${field}.value`, "must not be set for DELETE");
    return { operation, path: input.path };
  }
  if (input.value === undefined) {
    v.add(`${field}.value`, "is required for SET (send a null Value to store null)");
    return undefined;
  }
  // The value sits `depth` objects down in variables, which may nest LIMITS.jsonDepth levels in all.
  if (depth > 0) v.json(`${field}.value`, input.value, maxBytes, LIMITS.jsonDepth - depth);
  return { operation, path: input.path, value: input.value };
}

function checkMask(v: Violations, mask: readonly string[]): ReplaceablePart[] {
  const parts = new Set<ReplaceablePart>();
  mask.forEach((path, i) => {
    if ((REPLACEABLE_PARTS as readonly string[]).includes(path)) parts.add(path as ReplaceablePart);
    else if (path === "variables" || path.startsWith("variables.")) {
      v.add(`update_mask.paths[${i}]`, "variables are changed by changes (SET/DELETE), not replaced");
    } else v.add(`update_mask.paths[${i}]`, `must be one of ${REPLACEABLE_PARTS.join(", ")} (got "${path}")`);
  });
  return REPLACEABLE_PARTS.filter((p) => parts.has(p));
}

/**
 * Validates an UpdateSharedState request; throws VALIDATION_ERROR naming every bad field, together
 * with any violations the caller already put in `v` (context_id, expected_revision).
 * `maxBytes` is SHARED_STATE_MAX_BYTES; the resulting state's size is checked after applying.
 */
export function validateStateUpdate(input: StateUpdateInput, maxBytes: number, v: Violations = new Violations()): ValidStateUpdate {
  if (input.changes.length > LIMITS.stateChanges) {
    v.add("changes", `must hold at most ${LIMITS.stateChanges} changes (got ${input.changes.length})`);
  }
  const changes = input.changes
    .slice(0, LIMITS.stateChanges)
    .map((change, i) => checkChange(v, `changes[${i}]`, change, maxBytes))
    .filter((c): c is StateChange => c !== undefined);

  const parts = checkMask(v, input.updateMask);
  if (input.replace !== undefined && input.updateMask.length === 0) {
    v.add("update_mask", `is required with replace: name the parts to replace (${REPLACEABLE_PARTS.join(", ")})`);
  }
  if (input.changes.length === 0 && input.updateMask.length === 0 && input.replace === undefined) {
    v.add("changes", "at least one change, or replace with an update_mask, is required");
  }
  let replace: StateEdit["replace"] = {};
  if (parts.length > 0) {
    // Only the masked parts are read; a part named but not sent is replaced by an empty one (cleared).
    const source = input.replace ?? {};
    const picked: SharedStateInput = Object.fromEntries(parts.map((p) => [p, source[p]]));
    const valid = validateSharedState(v, "replace", picked, maxBytes);
    replace = Object.fromEntries(parts.map((p) => [p, valid[p]]));
  }
  if (input.requestId !== "") v.text("request_id", input.requestId, { min: 1, max: LIMITS.requestIdChars });
  v.throwIfAny();
  return { edit: { changes, replace }, requestId: input.requestId };
}

/** Throws VALIDATION_ERROR when the state an update would produce is larger than `maxBytes`. */
export function checkStateSize(bytes: number, maxBytes: number, edit: StateEdit): void {
  if (bytes <= maxBytes) return;
  const v = new Violations();
  v.add(
    edit.changes.length > 0 ? "changes" : "replace",
    `would make the shared state ${bytes} bytes as JSON, above the limit of ${maxBytes}`,
  );
  v.throwIfAny();
}
