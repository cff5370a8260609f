/**
 * Field checks that collect every violation of a request before failing, so a client learns all
 * that is wrong at once. Paths name fields as the client wrote them (`context.metadata.tags[2]`).
 */
import { AppError, type FieldViolation } from "./app-error.js";
import { jsonByteLength, jsonDepth, type JsonValue } from "./json.js";

/** Control characters: never in single-line text. NUL cannot even be stored by Postgres. */
const CONTROL = /[\u0000-\u001f\u007f]/;
/** Control characters but tab, newline and carriage return: never in multi-line text. */
const CONTROL_MULTILINE = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/;
const NUL = "\u0000";
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface TextRule {
  readonly min?: number;
  readonly max: number;
  /** Allow newlines and tabs (descriptions); never NUL or other controls. */
  readonly multiline?: boolean;
}

/** Length in characters (code points), as a person counts them. */
export function charLength(value: string): number {
  let n = 0;
  for (const _ of value) n++;
  return n;
}

export class Violations {
  private readonly list: FieldViolation[] = [];

  add(field: string, description: string): void {
    this.list.push({ field, description });
  }

  get empty(): boolean {
    return this.list.length === 0;
  }

  /** Throws VALIDATION_ERROR listing every violation collected, if any. */
  throwIfAny(): void {
    if (this.list.length > 0) throw AppError.validation(this.list);
  }

  text(field: string, value: string, rule: TextRule): boolean {
    const length = charLength(value);
    const min = rule.min ?? 0;
    if (length < min) {
      this.add(field, min === 1 ? "is required" : `must be at least ${min} characters`);
      return false;
    }
    if (length > rule.max) {
      this.add(field, `must be at most ${rule.max} characters (got ${length})`);
      return false;
    }
    if ((rule.multiline ? CONTROL_MULTILINE : CONTROL).test(value)) {
      this.add(field, "must not contain control characters");
      return false;
    }
    if (min > 0 && value.trim().length === 0) {
      this.add(field, "must not be blank");
      return false;
    }
    return true;
  }

  /** A value from a fixed set; `undefined` is allowed only when a default exists. */
  oneOf<T extends string>(field: string, value: string | undefined, allowed: readonly T[], fallback?: T): T {
    if (value === undefined) {
      if (fallback !== undefined) return fallback;
      this.add(field, `is required: one of ${allowed.join(", ")}`);
      return allowed[0] as T;
    }
    if ((allowed as readonly string[]).includes(value)) return value as T;
    this.add(field, `must be one of ${allowed.join(", ")} (got ${value})`);
    return allowed[0] as T;
  }

  integer(field: string, value: number, min: number, max: number): boolean {
    if (!Number.isSafeInteger(value) || value < min || value > max) {
      this.add(field, `must be an integer from ${min} to ${max} (got ${value})`);
      return false;
    }
    return true;
  }

  /** A list of short names (tags, roles, capabilities): bounded count, each non-empty, no repeats. */
  names(field: string, values: readonly string[], maxCount: number, maxLength: number): void {
    if (values.length > maxCount) {
      this.add(field, `must have at most ${maxCount} entries (got ${values.length})`);
      return;
    }
    const seen = new Set<string>();
    values.forEach((value, i) => {
      if (this.text(`${field}[${i}]`, value, { min: 1, max: maxLength }) && seen.has(value)) {
        this.add(`${field}[${i}]`, `repeats "${value}"`);
      }
      seen.add(value);
    });
  }

  /** Free-form JSON (Struct): bounded size and depth, and no NUL anywhere (Postgres rejects it). */
  json(field: string, value: JsonValue, maxBytes: number, maxDepth: number): void {
    const depth = jsonDepth(value);
    if (depth > maxDepth) {
      this.add(field, `must nest at most ${maxDepth} levels deep (got ${depth})`);
      return;
    }
    const bytes = jsonByteLength(value);
    if (bytes > maxBytes) {
      this.add(field, `must be at most ${maxBytes} bytes as JSON (got ${bytes})`);
      return;
    }
    if (unstorable(value)) {
      this.add(field, "must not contain NUL characters or non-finite numbers (NaN, Infinity)");
    }
  }

  uuid(field: string, value: string): boolean {
    if (value === "") {
      this.add(field, "is required");
      return false;
    }
    if (!UUID.test(value)) {
      this.add(field, "must be a UUID");
      return false;
    }
    return true;
  }
}

/** True when JSON storage would reject (NUL) or silently change (NaN → null) the value. */
function unstorable(value: JsonValue): boolean {
  if (typeof value === "string") return value.includes(NUL);
  if (typeof value === "number") return !Number.isFinite(value);
  if (value === null || typeof value !== "object") return false;
  if (Array.isArray(value)) return value.some(unstorable);
  return Object.entries(value).some(([k, v]) => k.includes(NUL) || unstorable(v));
}

/** Throws VALIDATION_ERROR unless `value` is a UUID; ids are checked before any database work. */
export function requireUuid(field: string, value: string): void {
  const v = new Violations();
  v.uuid(field, value);
  v.throwIfAny();
}
