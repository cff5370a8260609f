/**
 * The events a commit wrote, as this instance's watch hub receives them (PgContextStoreOptions
 * .onCommit): exactly as listEvents would read them back, so a watcher gets the same message
 * whichever way its feed learnt of a revision.
 */
import { Buffer } from "node:buffer";
import type { ContextEvent } from "../domain/event.js";
import type { JsonValue } from "../domain/json.js";
import { eventFromRow, eventRowJson } from "./rows.js";

/**
 * The events a committed change appended, per context. A change writes every event of the
 * revision it makes, so these are whole revisions.
 */
export interface CommittedEvents {
  /**
   * `contextId`'s events in (revision, seq) order, exactly as listEvents would read them back:
   * fresh copies through the same row mapping (and the payload through a jsonb-like round trip),
   * frozen, since every watcher of the context shares them. Built on first ask: commits no one
   * watches cost nothing.
   */
  of(contextId: string): readonly ContextEvent[];
  /**
   * `contextId`'s events as eventsFromWire reads them back on another instance, when they take
   * at most MAX_WIRE_CHARS (the doorbell carries them, so that instance's watchers need no read);
   * undefined when larger (that instance reads them from the log). A few µs per commit.
   */
  wire(contextId: string): string | undefined;
}

/** Events larger than this (as JSON) go by the log, not by the doorbell: Redis pub/sub is for small messages. */
export const MAX_WIRE_CHARS = 4_096;

/** The newest revision appended per context: what the doorbell rings. */
export function headsOf(events: readonly ContextEvent[]): Map<string, number> {
  const heads = new Map<string, number>();
  for (const e of events) if ((heads.get(e.contextId) ?? 0) < e.revision) heads.set(e.contextId, e.revision);
  return heads;
}

/**
 * `appended`: every event committed; `rows`: per context, its events' row JSON when the statement
 * already made it (change-sql.ts eventRowsJson), so the doorbell carries that text.
 */
export function committedEvents(appended: readonly ContextEvent[], rows?: ReadonlyMap<string, string>): CommittedEvents {
  const built = new Map<string, readonly ContextEvent[]>();
  const ofContext = (contextId: string): ContextEvent[] =>
    appended.filter((e) => e.contextId === contextId).sort((a, b) => a.revision - b.revision || a.seq - b.seq);
  return {
    wire(contextId) {
      const text = rows?.get(contextId) ?? JSON.stringify(ofContext(contextId).map(eventRowJson));
      return text.length <= MAX_WIRE_CHARS ? text : undefined;
    },
    of(contextId) {
      let events = built.get(contextId);
      if (events === undefined) {
        events = ofContext(contextId).map(asReadBack);
        built.set(contextId, events);
      }
      return events;
    },
  };
}

/**
 * Another instance's `wire(contextId)`, as that instance's `of(contextId)` (and listEvents)
 * returns them: the same row mapping and jsonb-like payload. Throws on text that is not such a list.
 */
export function eventsFromWire(wire: string): readonly ContextEvent[] {
  const rows = JSON.parse(wire) as unknown;
  if (!Array.isArray(rows)) throw new TypeError("doorbell events: not a list");
  return rows.map((row: Record<string, unknown>) => deepFreeze(eventFromRow({ ...row, payload: asJsonb(row["payload"] as JsonValue) })));
}

/**
 * `event` as listEvents returns it once stored: eventRowJson → (jsonb) → eventFromRow. The
 * service's own object may differ from that (a context payload carrying its shared state, a
 * Struct's key order, an undefined field), and a watcher must see the same either way.
 */
function asReadBack(event: ContextEvent): ContextEvent {
  const row = eventRowJson(event);
  return deepFreeze(eventFromRow({ ...row, payload: asJsonb(row["payload"] as JsonValue) }));
}

/**
 * A JSON value as it comes back from a jsonb column: what JSON.stringify sends (undefined dropped,
 * dates as strings, -0 as 0), each object's keys in jsonb's order — shorter first, then bytewise
 * in UTF-8 — which then go through JSON.parse as the drivers' do. Numbers come back as the same
 * doubles (jsonb keeps their decimal value exactly, if not always the same text).
 */
function asJsonb(value: JsonValue): JsonValue {
  return JSON.parse(JSON.stringify(value), (_key, v: unknown) => {
    if (v === null || typeof v !== "object" || Array.isArray(v)) return v;
    const entries = Object.entries(v).sort(([a], [b]) => jsonbKeyOrder(a, b));
    // fromEntries defines own properties: a "__proto__" key stays a key, as JSON.parse made it.
    return Object.fromEntries(entries);
  }) as JsonValue;
}

function jsonbKeyOrder(a: string, b: string): number {
  const x = Buffer.from(a, "utf8");
  const y = Buffer.from(b, "utf8");
  return x.length - y.length || Buffer.compare(x, y);
}

/** Freezes `value` and everything reachable from it (dates included: their fields, not their time). */
function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
