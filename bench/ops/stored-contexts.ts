/**
 * Fills the contexts table to a given size for the scale scenarios, straight in SQL: one
 * `INSERT … SELECT … FROM generate_series` per slice, executed inside the database, so 1,000,000
 * rows take seconds on Postgres (not the ~700 rows/s of the old row → jsonb → row copy).
 *
 * Bench-only. The rows are valid for the reads the scale scenarios make (GetContext, ListContexts):
 * every column of src/store/schema.ts written explicitly, the jsonb columns (configuration, access
 * control, metadata, shared state), owner and visibility copied from a template context created
 * through the API, a fresh id and a name unique per owner, a type dealt round-robin over every
 * context type (so a type filter matches a fraction of the table, as it would in use), created_at
 * one millisecond apart going back from the template's (older than every context the API made), no
 * participants, revision 1 with no event or snapshot rows behind it (GetSharedState and
 * ListContextEvents on them are not what is measured).
 */
import { PGlite } from "@electric-sql/pglite";
import { randomUUID } from "node:crypto";
import postgres from "postgres";
import { CONTEXT_TYPES } from "../../src/domain/context.js";

/** Rows per INSERT: one statement per slice keeps each transaction (and its progress line) short. */
const SLICE = 100_000;

/**
 * $1 template context id, $2 first and $3 last generate_series number, $4 a name prefix unique to
 * this fill, $5 the context types to deal.
 */
const FILL_SQL = `
insert into contexts (
  context_id, owner, name, description, type, status, lifecycle_stage, configuration, access_control,
  metadata, tags, shared_state, visibility, participant_count, session_count, revision, created_at,
  updated_at, last_activity_at, expires_at, sweep_at, terminated_at, compact_revision, state_snapshot_revision
)
select
  gen_random_uuid(), t.owner, $4::text || g, 'stored by the benchmark (scale)',
  ($5::text[])[1 + g % cardinality($5::text[])], 'ACTIVE', 'PLANNING', t.configuration, t.access_control,
  t.metadata, t.tags, t.shared_state, t.visibility, 0, 0, 1, t.created_at - g * interval '1 millisecond',
  t.created_at - g * interval '1 millisecond', t.created_at - g * interval '1 millisecond', t.expires_at,
  t.expires_at, null, 0, 0
from contexts t, generate_series($2::int, $3::int) g
where t.context_id = $1::uuid`;

/** Runs a statement with positional parameters: postgres.js or PGlite. */
type Run = (text: string, params: unknown[]) => Promise<Array<Record<string, unknown>>>;

/** Rows added, and rows stored after the fill. */
export interface Filled {
  readonly added: number;
  readonly stored: number;
}

async function fill(run: Run, templateId: string, total: number, keep: readonly string[], progress: (line: string) => void): Promise<Filled> {
  const stored = async (): Promise<number> => Number((await run("select count(*)::int as n from contexts", []))[0]?.["n"] ?? 0);
  let present = await stored();
  const trimmed = present > total;
  if (trimmed) {
    // The operations left more than the smaller size asks for (delete scenarios seed more than they
    // use): keep only `keep` (the pool the scale scenarios read, the template among them), then fill.
    await run("delete from contexts where not (context_id = any($1::uuid[]))", [[templateId, ...keep]]);
    present = await stored();
    progress(`trimmed to ${present.toLocaleString("en-US")}`);
  }
  const prefix = `stored-${randomUUID().slice(0, 8)}-`;
  for (let from = 1; from <= total - present; from += SLICE) {
    const to = Math.min(total - present, from + SLICE - 1);
    await run(FILL_SQL, [templateId, from, to, prefix, [...CONTEXT_TYPES]]);
    progress(`${(present + to).toLocaleString("en-US")} / ${total.toLocaleString("en-US")}`);
  }
  // As after any bulk load: statistics for the planner, and every new row's hint bits and the
  // visibility map set now, not by the measured reads (the first read of each fresh page would
  // otherwise set them and write the page back), nor by an autovacuum running beside them; then a
  // checkpoint, so the gigabyte of dirty pages is not written out during the measured window.
  if (total > present || trimmed) {
    await run("vacuum (analyze) contexts", []);
    await run("checkpoint", []);
  }
  return { added: Math.max(0, total - present), stored: Math.max(total, present) };
}

/** Brings the contexts table of a Postgres database to `total` rows (trimming it to `keep` first when it holds more). */
export async function fillContextsPostgres(databaseUrl: string, templateId: string, total: number, keep: readonly string[], progress: (line: string) => void): Promise<Filled> {
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} });
  try {
    return await fill((text, params) => sql.unsafe(text, params as never[]), templateId, total, keep, progress);
  } finally {
    await sql.end({ timeout: 5 });
  }
}

/**
 * The same on a PGlite data directory, which no other process may have open (stop the server
 * first: PGlite is single-process).
 */
export async function fillContextsPglite(dataDir: string, templateId: string, total: number, keep: readonly string[], progress: (line: string) => void): Promise<Filled> {
  const db = await PGlite.create(dataDir);
  try {
    return await fill(async (text, params) => (await db.query<Record<string, unknown>>(text, params)).rows, templateId, total, keep, progress);
  } finally {
    await db.close();
  }
}
