/**
 * traceQueries on real drivers: drizzle over postgres.js (a throwaway database on the test
 * Postgres) and over PGlite, each statement a CLIENT span under the span active when it ran (also
 * inside transactions and savepoints, and across awaits), with its SQL text and never a parameter
 * value, an ERROR status and SQLSTATE when it fails, and nothing at all outside a traced call or
 * without a tracer.
 */
import { PGlite } from "@electric-sql/pglite";
import { context, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Span } from "@opentelemetry/api";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { eq, sql } from "drizzle-orm";
import { integer, pgTable, text } from "drizzle-orm/pg-core";
import { drizzle as drizzlePglite } from "drizzle-orm/pglite";
import { drizzle as drizzlePostgres } from "drizzle-orm/postgres-js";
import postgres from "postgres";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { describeQuery, traceQueries } from "../../src/store/query-tracing.js";
import { useAsyncLocalStorageContext } from "../../src/tracing/context-manager.js";
import { createTestPostgresDatabase, postgresAvailable, type EmptyTestDatabase } from "../support/databases.js";

const items = pgTable("items", { id: integer("id").primaryKey(), name: text("name").notNull() });
const CREATE_ITEMS = "create table items (id integer primary key, name text not null)";

/** A value that must never show up in a span. */
const SECRET = "s3cret-value-7f1c";

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const tracer = provider.getTracer("query-tracing-test");

/** The drizzle surface both drivers share, as these tests use it. */
type Db = ReturnType<typeof drizzlePostgres> | ReturnType<typeof drizzlePglite>;

/** Runs `work` as a traced call would: under an active, recording span. */
async function inCall<T>(work: () => Promise<T>): Promise<{ call: Span; value: T }> {
  const call = tracer.startSpan("call", { kind: SpanKind.SERVER });
  try {
    const value = await context.with(trace.setSpan(ROOT_CONTEXT, call), async () => {
      // A hop through the timer queue first: the context must survive more than a microtask.
      await new Promise((resolve) => setTimeout(resolve, 1));
      return work();
    });
    return { call, value };
  } finally {
    call.end();
  }
}

function dbSpans(): ReadableSpan[] {
  return exporter.getFinishedSpans().filter((s) => s.kind === SpanKind.CLIENT);
}

/** Everything a span would export, as text: checked for leaked values. */
function exported(span: ReadableSpan): string {
  return JSON.stringify({ name: span.name, attributes: span.attributes, status: span.status, events: span.events, links: span.links });
}

function expectChildOf(span: ReadableSpan, call: Span): void {
  expect(span.spanContext().traceId).toBe(call.spanContext().traceId);
  expect(span.parentSpanContext?.spanId).toBe(call.spanContext().spanId);
}

/** The same checks on both drivers. */
function driverSuite(db: () => Db): void {
  it("makes each statement a CLIENT span under the active one, with its SQL text and no parameter value", async () => {
    const { call } = await inCall(async () => {
      await db().insert(items).values({ id: 1, name: SECRET });
      return db().select().from(items).where(eq(items.name, SECRET));
    });
    const spans = dbSpans();
    expect(spans.map((s) => s.name)).toEqual(["INSERT items", "SELECT items"]);
    for (const span of spans) expectChildOf(span, call);
    const [insert, select] = spans;
    expect(insert!.attributes).toMatchObject({
      "db.system.name": "postgresql",
      "db.operation.name": "INSERT",
      "db.collection.name": "items",
      "db.query.text": 'insert into "items" ("id", "name") values ($1, $2)',
    });
    expect(select!.attributes["db.query.text"]).toMatch(/^select .* from "items" where "items"\."name" = \$1$/);
    expect(select!.status.code).toBe(SpanStatusCode.UNSET);
    for (const span of spans) expect(exported(span)).not.toContain(SECRET);
  });

  it("traces the statements of a transaction and of a savepoint inside it", async () => {
    const { call } = await inCall(() =>
      db().transaction(async (tx) => {
        await tx.insert(items).values({ id: 2, name: SECRET });
        await tx.transaction(async (nested) => {
          await nested.update(items).set({ name: "renamed" }).where(eq(items.id, 2));
        });
        await tx.delete(items).where(eq(items.id, 2));
      }),
    );
    const names = dbSpans().map((s) => s.name);
    for (const name of ["INSERT items", "UPDATE items", "DELETE items"]) expect(names).toContain(name);
    for (const span of dbSpans()) {
      expectChildOf(span, call);
      expect(exported(span)).not.toContain(SECRET);
    }
  });

  it("marks a failed statement ERROR with its SQLSTATE, and keeps the message (which quotes the value) out", async () => {
    await inCall(async () => {
      // Postgres' message names the value: invalid input syntax for type integer: "s3cret…".
      await expect(db().execute(sql`select ${SECRET}::integer`)).rejects.toThrow();
    });
    const [failed] = dbSpans();
    expect(failed?.name).toBe("SELECT");
    expect(failed?.status).toEqual({ code: SpanStatusCode.ERROR, message: "SQLSTATE 22P02" });
    expect(failed?.attributes).toMatchObject({ "db.response.status_code": "22P02", "error.type": "22P02" });
    expect(exported(failed!)).not.toContain(SECRET);
  });

  it("traces nothing outside a recording span", async () => {
    await db().select().from(items);
    const unsampled = trace.wrapSpanContext({ traceId: "1".repeat(32), spanId: "2".repeat(16), traceFlags: 0 });
    await context.with(trace.setSpan(ROOT_CONTEXT, unsampled), () => db().select().from(items));
    expect(dbSpans()).toEqual([]);
  });
}

beforeAll(() => {
  expect(useAsyncLocalStorageContext()).toBe(true);
});
beforeEach(() => {
  exporter.reset();
});

describe(traceQueries.name, () => {
  it("returns the client itself when there is no tracer (tracing off: nothing wrapped)", () => {
    const client = postgres("postgres://nobody@127.0.0.1:1/none", { max: 1 });
    expect(traceQueries(client, undefined)).toBe(client);
  });

  it("names spans after the operation and the table, and scrubs literals only from text sent without parameters", () => {
    // A WITH that writes several tables names none (the conventions' rule); one that writes one names it.
    expect(describeQuery('with moved as (delete from "a" returning *) insert into "b" select * from moved', true).name).toBe("DELETE");
    expect(describeQuery("with typed as (select $1::text) insert into contexts select * from typed", true).name).toBe("INSERT contexts");
    expect(describeQuery("with recent as (select id from t) select * from recent", true).name).toBe("SELECT t");
    expect(describeQuery('select extract(epoch from now()) as "age" from "contexts"', true).name).toBe("SELECT contexts");
    expect(describeQuery("select 1", false)).toEqual({ name: "SELECT", attributes: { "db.system.name": "postgresql", "db.query.text": "select 1", "db.operation.name": "SELECT" } });
    expect(describeQuery("update t set name = 'it''s secret' where id = 1", false).attributes["db.query.text"]).toBe("update t set name = '?' where id = 1");
    expect(describeQuery("select 'kept' from t where id = $1", true).attributes["db.query.text"]).toBe("select 'kept' from t where id = $1");
  });
});

const postgresUp = await postgresAvailable();

describe.skipIf(!postgresUp)(`${traceQueries.name} on postgres.js`, () => {
  let empty: EmptyTestDatabase | undefined;
  let client: postgres.Sql | undefined;
  let db: ReturnType<typeof drizzlePostgres> | undefined;
  beforeAll(async () => {
    empty = await createTestPostgresDatabase();
    client = postgres(empty.url, { max: 2, onnotice: () => {} });
    await client.unsafe(CREATE_ITEMS);
    db = drizzlePostgres({ client: traceQueries(client, tracer) });
  });
  afterAll(async () => {
    await client?.end({ timeout: 5 });
    await empty?.drop();
  });
  beforeEach(async () => {
    await client!.unsafe("delete from items");
  });

  driverSuite(() => db!);

  it("names the database and server on each span", async () => {
    await inCall(() => db!.select().from(items));
    const [select] = dbSpans();
    expect(select?.attributes).toMatchObject({ "db.namespace": new URL(empty!.url).pathname.slice(1), "server.address": "127.0.0.1", "server.port": 5432 });
  });
});

describe(`${traceQueries.name} on PGlite`, () => {
  let client: PGlite | undefined;
  let db: ReturnType<typeof drizzlePglite> | undefined;
  beforeAll(async () => {
    client = await PGlite.create("memory://");
    await client.exec(CREATE_ITEMS);
    db = drizzlePglite({ client: traceQueries(client, tracer) });
  });
  afterAll(async () => {
    await client?.close();
  });
  beforeEach(async () => {
    await client!.exec("delete from items");
  });

  driverSuite(() => db!);
});
