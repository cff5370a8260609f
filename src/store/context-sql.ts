/**
 * The contexts' reads, each one statement whose text is written once per shape: a context, a page
 * of ListContexts with its capped total, the statistics, the event trail, the heads the watch hub
 * reconciles with, and a request key's stored result.
 *
 * ListContexts varies with its filter: one text per combination of the filters present (memoized
 * on first use), so the planner sees each query as it is — an owner filter can use its index —
 * rather than one generic text with `($n is null or …)` it could not plan for.
 */
import type { ContextFilter } from "../domain/context.js";
import type { ContextListQuery, RequestKey } from "../service/ports.js";
import { REQUEST_KEY_TTL_MS } from "./change-sql.js";
import { contextColumns, contextJson, eventColumns } from "./rows.js";

export const GET_CONTEXT = `select ${contextColumns("c")} from contexts c where c.context_id = $1::text::uuid`;
export const GET_CONTEXT_WITH_STATE = `select ${contextColumns("c")}, c.shared_state from contexts c where c.context_id = $1::text::uuid`;

/**
 * What `$1` may read, mirroring domain/permissions.ts: the owner reads its contexts, anyone reads
 * PUBLIC ones, and a member reads the contexts it belongs to (every role grants READ).
 *
 * Membership is `context_id IN (the agent's contexts)` rather than a correlated EXISTS: under an
 * OR the planner cannot turn either into a join, but it runs an uncorrelated IN once (through
 * participants_agent_context_idx) and probes a hash per context row, where EXISTS would run an
 * index lookup per row. Both mean the same.
 */
const READABLE = `(c.owner = $1::text or c.visibility = 'PUBLIC'
  or c.context_id in (select p.context_id from participants p where p.agent_id = $1::text))`;

/** LIKE's wildcards and its escape character, escaped, so a name prefix matches literally. */
function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, (c) => `\\${c}`);
}

/** The filters, in parameter order: each present one adds its condition and one parameter. */
const FILTERS: ReadonlyArray<{ readonly condition: (n: number) => string; readonly value: (f: ContextFilter) => string | undefined }> = [
  { condition: (n) => `c.type = $${n}::text`, value: (f) => f.type },
  { condition: (n) => `c.status = $${n}::text`, value: (f) => f.status },
  { condition: (n) => `c.lifecycle_stage = $${n}::text`, value: (f) => f.lifecycleStage },
  { condition: (n) => `c.owner = $${n}::text`, value: (f) => f.owner },
  { condition: (n) => `c.name like $${n}::text`, value: (f) => (f.namePrefix ? `${escapeLike(f.namePrefix)}%` : undefined) },
  // `tags @> ARRAY[tag]`, which the GIN index on tags serves.
  { condition: (n) => `c.tags @> array[$${n}::text]`, value: (f) => f.tag },
];

const LIST_TEXTS = new Map<string, string>();

function listText(present: readonly boolean[], after: boolean, count: "all" | "capped" | "none"): string {
  let n = 1;
  const conditions = [READABLE];
  FILTERS.forEach((filter, i) => {
    if (present[i]) conditions.push(filter.condition(++n));
  });
  const matching = conditions.join("\n  and ");
  const keyset = after ? `\n  and (c.created_at, c.context_id) < ($${++n}::text::timestamptz, $${++n}::text::uuid)` : "";
  const limit = `$${++n}::int`;
  const total =
    count === "none"
      ? "null::int"
      : count === "all"
        ? `(select count(*) from contexts c where ${matching})::int`
        : `(select count(*) from (select 1 from contexts c where ${matching} limit $${++n}::int) m)::int`;
  // The page is one JSON array (contextJson): an empty page is [] beside the total.
  return `select t.total, page.contexts from (select ${total} as total) t
cross join lateral (
  select coalesce(json_agg(${contextJson("c")} order by c.created_at desc, c.context_id desc), '[]'::json) as contexts
  from (
    select c.* from contexts c
    where ${matching}${keyset}
    order by c.created_at desc, c.context_id desc limit ${limit}
  ) c
) page`;
}

/** ListContexts' page and total in one statement. */
export function listContextsStatement(query: ContextListQuery): [string, unknown[]] {
  const values = FILTERS.map((f) => f.value(query.filter));
  const present = values.map((v) => v !== undefined && v !== "");
  const count = query.count === false ? "none" : query.count === undefined ? "all" : "capped";
  const key = `${present.map(Number).join("")}:${query.after !== undefined}:${count}`;
  let text = LIST_TEXTS.get(key);
  if (text === undefined) {
    text = listText(present, query.after !== undefined, count);
    LIST_TEXTS.set(key, text);
  }
  const params: unknown[] = [query.principal, ...values.filter((_, i) => present[i])];
  if (query.after !== undefined) params.push(query.after.createdAt.toISOString(), query.after.contextId);
  params.push(query.limit);
  if (query.count !== undefined && query.count !== false) params.push(Math.max(0, Math.floor(query.count.upTo)) + 1);
  return [text, params];
}

export const STATISTICS = `select c.status, c.lifecycle_stage, c.type, count(*)::float8 as contexts,
  coalesce(sum(c.participant_count), 0)::float8 as participants, coalesce(max(c.participant_count), 0)::float8 as max_participants
from contexts c where ${READABLE}
group by c.status, c.lifecycle_stage, c.type
order by c.status, c.lifecycle_stage, c.type`;

export const LIST_EVENTS = `select ${eventColumns("e")} from context_events e
where e.context_id = $1::text::uuid and (e.revision, e.seq) >= ($2::bigint, $3::int)
order by e.revision, e.seq limit $4::int`;

/**
 * The revision of each context that still exists, in one statement whatever the count: one array
 * parameter, where IN (…) would bind one parameter per id (and hit the protocol's 65535 limit on a
 * busy hub). The array travels as a text literal ('{…}'); uuids need no quoting.
 */
export const HEADS = `select c.context_id, c.revision from contexts c where c.context_id = any($1::text::uuid[])`;

/** By mplp_request_key (migrations/0004): the primary key's lookup, whatever the plan cached. */
export const STORED_RESULT = `select k.method, k.result from mplp_request_key($1::text, $2::text, $3::text::timestamptz) k`;

export function storedResultParams(key: RequestKey, now: Date): unknown[] {
  return [key.principal, key.requestId, new Date(now.getTime() - REQUEST_KEY_TTL_MS).toISOString()];
}
