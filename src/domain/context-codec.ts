/**
 * Context ⇄ plain JSON, for what is stored as jsonb: event payloads and idempotent results.
 * Dates travel as ISO strings; everything else is already JSON.
 */
import type { Context } from "./context.js";
import type { JsonObject } from "./json.js";

export function contextToJson(context: Context): JsonObject {
  return JSON.parse(JSON.stringify(context)) as JsonObject;
}

export function contextFromJson(json: JsonObject): Context {
  const raw = json as unknown as Context & Record<"createdAt" | "updatedAt" | "lastActivityAt", string> & { expiresAt: string | null };
  return {
    ...raw,
    createdAt: new Date(raw.createdAt),
    updatedAt: new Date(raw.updatedAt),
    lastActivityAt: new Date(raw.lastActivityAt),
    expiresAt: raw.expiresAt === null ? null : new Date(raw.expiresAt),
  };
}
