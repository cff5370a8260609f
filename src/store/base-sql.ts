/**
 * The base of a write (service/ports.ts WriteBase) in one statement: the context row and the
 * participants the decision needs — all of them when the context has at most COMPLETE_UP_TO (so
 * the cache can decide later writes on it too), else the caller, the agents a join adds and the
 * participant the write is about — aggregated into one jsonb column. One statement reads one
 * snapshot of the database, so every row is as of the context's revision. Locked (FOR UPDATE OF
 * the context row only) on the transaction path.
 */
import type { BaseQuery, WriteBase } from "../service/ports.js";
import type { Participant } from "../domain/participant.js";
import { contextColumns, contextFromRow, participantFromRow, participantJson } from "./rows.js";
import type { Row } from "./sql-client.js";

/** Contexts with at most this many participants are read whole: lookups in their base never miss. */
export const COMPLETE_UP_TO = 100;

type Lock = "none" | "update" | "skip";

function baseText(withState: boolean, lock: Lock): string {
  const tail = lock === "none" ? "" : lock === "update" ? "\nfor update of c" : "\nfor update of c skip locked";
  return `select ${contextColumns("c")}${withState ? ", c.shared_state" : ""},
  c.participant_count <= $2::int as complete,
  (select coalesce(jsonb_agg(${participantJson("p")} order by p.joined_at, p.participant_id), '[]'::jsonb)
   from participants p
   where p.context_id = c.context_id and (
     c.participant_count <= $2::int
     or p.agent_id in (select value from jsonb_array_elements_text($3::text::jsonb))
     or p.participant_id = $4::text::uuid)) as participants
from contexts c where c.context_id = $1::text::uuid${tail}`;
}

const TEXTS = new Map<string, string>();
for (const withState of [false, true]) {
  for (const lock of ["none", "update", "skip"] as const) TEXTS.set(`${withState}:${lock}`, baseText(withState, lock));
}

/** The statement reading `query`'s base (locked as asked). */
export function baseStatement(query: BaseQuery, lock: Lock): [string, unknown[]] {
  const text = TEXTS.get(`${query.withState}:${lock}`)!;
  return [text, [query.contextId, COMPLETE_UP_TO, JSON.stringify(query.agents), query.participantId ?? null]];
}

/** The base in the statement's row; null when the context does not exist. */
export function baseFromRow(query: BaseQuery, row: Row | undefined): WriteBase | null {
  if (row === undefined) return null;
  const participants = new Map<string, Participant>();
  const members = new Map<string, Participant>();
  for (const r of row["participants"] as Row[]) {
    const p = participantFromRow(r);
    participants.set(p.participantId, p);
    members.set(p.agentId, p);
  }
  return {
    context: contextFromRow(row),
    participants,
    members,
    complete: row["complete"] === true,
    agents: new Set(query.agents),
    participantIds: new Set(query.participantId === undefined ? [] : [query.participantId]),
    cached: false,
  };
}
