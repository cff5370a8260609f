/**
 * Context and Participant ⇄ plain JSON, for what is stored as jsonb: event payloads and
 * idempotent results. Dates travel as ISO strings; everything else is already JSON.
 */
import type { Context } from "./context.js";
import type { JsonObject } from "./json.js";
import type { Participant } from "./participant.js";

type Dated<T, K extends keyof T> = Omit<T, K> & { [P in K]: string | null };

function date(value: string | null | undefined): Date | null {
  return value === null || value === undefined ? null : new Date(value);
}

export function toJson(value: Context | Participant | readonly Participant[]): JsonObject {
  return JSON.parse(JSON.stringify(Array.isArray(value) ? { items: value } : value)) as JsonObject;
}

export const contextToJson: (context: Context) => JsonObject = toJson;
export const participantToJson: (participant: Participant) => JsonObject = toJson;

export function contextFromJson(json: JsonObject): Context {
  const raw = json as unknown as Dated<Context, "createdAt" | "updatedAt" | "lastActivityAt" | "expiresAt" | "terminatedAt">;
  return {
    ...raw,
    createdAt: new Date(raw.createdAt ?? 0),
    updatedAt: new Date(raw.updatedAt ?? 0),
    lastActivityAt: new Date(raw.lastActivityAt ?? 0),
    expiresAt: date(raw.expiresAt),
    terminatedAt: date(raw.terminatedAt),
  };
}

export function participantFromJson(json: JsonObject): Participant {
  const raw = json as unknown as Dated<Participant, "joinedAt" | "lastActivityAt" | "leaseExpiresAt" | "inactiveSince">;
  return {
    ...raw,
    joinedAt: new Date(raw.joinedAt ?? 0),
    lastActivityAt: new Date(raw.lastActivityAt ?? 0),
    leaseExpiresAt: new Date(raw.leaseExpiresAt ?? 0),
    inactiveSince: date(raw.inactiveSince),
  };
}

/** Participants stored with toJson(list). */
export function participantsFromJson(json: JsonObject): Participant[] {
  const items = (json["items"] ?? []) as JsonObject[];
  return items.map(participantFromJson);
}
