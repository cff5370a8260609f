/**
 * Context and Participant ⇄ plain JSON, for what is stored as jsonb: event payloads and
 * idempotent results. Dates travel as ISO strings; everything else is already JSON.
 */
import type { Context } from "./context.js";
import type { JsonObject, JsonValue } from "./json.js";
import type { Participant } from "./participant.js";

type Dated<T, K extends keyof T> = Omit<T, K> & { [P in K]: string | null };

function date(value: string | null | undefined): Date | null {
  return value === null || value === undefined ? null : new Date(value);
}

/**
 * A value as the store keeps it in jsonb: what JSON.stringify writes of it (a Date becomes its ISO
 * string, which contextFromJson and participantFromJson read back). The domain objects are handed
 * over as they are: a JSON.parse round trip of each cost more than the rest of a write's mapping.
 */
export type StoredDocument = JsonValue | Context | { readonly items: readonly Participant[] };

/** Participants as stored together (participantsFromJson reads them back). */
export function participantsDocument(participants: readonly Participant[]): StoredDocument {
  return { items: participants };
}

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

/** Participants stored as participantsDocument(list). */
export function participantsFromJson(json: JsonObject): Participant[] {
  const items = (json["items"] ?? []) as JsonObject[];
  return items.map(participantFromJson);
}
