/** JSON values as google.protobuf.Struct / Value carry them. */
export type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject;
export interface JsonObject {
  [key: string]: JsonValue;
}

/** Deepest nesting of objects and arrays in a value (a scalar is 0). */
export function jsonDepth(value: JsonValue): number {
  if (value === null || typeof value !== "object") return 0;
  let deepest = 0;
  for (const child of Array.isArray(value) ? value : Object.values(value)) {
    deepest = Math.max(deepest, jsonDepth(child));
  }
  return deepest + 1;
}

/** Size in bytes of the value's UTF-8 JSON encoding. */
export function jsonByteLength(value: unknown): number {
  return new TextEncoder().encode(JSON.stringify(value)).length;
}
