/**
 * The checksum of a shared state: sha256 (hex) of its canonical JSON. Canonical means object keys
 * sorted at every level, so the same state gives the same checksum however it was built, stored
 * (jsonb reorders keys) or decoded (a proto map has no order); array order is kept, it is data.
 */
import { createHash } from "node:crypto";
import type { SharedState } from "./shared-state.js";

/**
 * The canonical JSON text of a value: keys sorted by UTF-16 code units, no whitespace, numbers
 * and strings as JSON.stringify writes them, undefined-valued keys left out (as JSON drops them).
 */
export function canonicalJson(value: unknown): string {
  const parts: string[] = [];
  write(value, parts);
  return parts.join("");
}

function write(value: unknown, out: string[]): void {
  if (value === null || typeof value !== "object") {
    // Top-level undefined cannot occur inside SharedState; JSON's "null" keeps the text valid.
    out.push(value === undefined ? "null" : JSON.stringify(value));
    return;
  }
  if (Array.isArray(value)) {
    out.push("[");
    value.forEach((item, i) => {
      if (i > 0) out.push(",");
      write(item === undefined ? null : item, out);
    });
    out.push("]");
    return;
  }
  const record = value as Record<string, unknown>;
  out.push("{");
  let first = true;
  for (const key of Object.keys(record).sort()) {
    const item = record[key];
    if (item === undefined) continue;
    if (!first) out.push(",");
    first = false;
    out.push(JSON.stringify(key), ":");
    write(item, out);
  }
  out.push("}");
}

/** A state's checksum and its size, from one serialization. */
export interface StateDigest {
  /** sha256 of the canonical JSON, lowercase hex. */
  readonly checksum: string;
  /** Bytes of the canonical JSON as UTF-8: what SHARED_STATE_MAX_BYTES limits. */
  readonly bytes: number;
}

/**
 * Digests of the states digested before, by object: a state is never changed once made (an edit
 * makes a new one, state-apply.ts), and a cached GetSharedState answers the same object many times.
 */
const digests = new WeakMap<SharedState, StateDigest>();

/** Digests the whole state: variables, resources, dependencies and goals. */
export function digestState(state: SharedState): StateDigest {
  return digests.get(state) ?? digestStateJson(state);
}

/**
 * digestState, with the canonical JSON it digested: a write stores that text as the state (jsonb
 * keeps no key order, so it reads back the same) and in its saved result, where it serialized the
 * state twice more. The text is not kept with the digest: a cached state would hold it twice over.
 */
export function digestStateJson(state: SharedState): StateDigest & { readonly json: string } {
  const json = canonicalJson({
    variables: state.variables,
    resources: state.resources,
    dependencies: state.dependencies,
    goals: state.goals,
  });
  const digest = { checksum: createHash("sha256").update(json, "utf8").digest("hex"), bytes: Buffer.byteLength(json, "utf8") };
  digests.set(state, digest);
  return { ...digest, json };
}

/** sha256 (hex) of the state's canonical JSON. */
export function stateChecksum(state: SharedState): string {
  return digestState(state).checksum;
}
