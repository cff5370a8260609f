import { PGlite } from "@electric-sql/pglite";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PgliteSqlClient } from "../../src/store/sql-client.js";

describe("PgliteSqlClient's prepared statements", () => {
  let pglite: PGlite;
  let client: PgliteSqlClient;
  beforeAll(async () => {
    pglite = await PGlite.create("memory://");
    await pglite.exec("create table items (id int primary key, name text not null, at timestamptz, doc jsonb, big bigint)");
    client = new PgliteSqlClient(pglite);
  });
  afterAll(async () => {
    await pglite.close();
  });

  const insert = "insert into items values ($1::int, $2::text, $3::text::timestamptz, $4::text::jsonb, $5::bigint) returning *";
  const select = "select * from items where id = any($1::text::int[]) order by id";

  it("answers as PGlite's own query does, parsing each statement once whatever its parameters", async () => {
    const at = "2026-12-06T10:00:00.000Z";
    await client.query(insert, [1, "one", at, JSON.stringify({ a: [1, "x"] }), 9_007_199_254_740_991]);
    await client.query(insert, [2, "two", null, null, 0]);
    const rows = await client.query(select, ["{1,2}"]);
    expect(rows).toEqual((await pglite.query(select, ["{1,2}"])).rows);
    expect(rows[0]).toMatchObject({ id: 1, name: "one", at: new Date(at), doc: { a: [1, "x"] } });
    expect(rows[1]).toMatchObject({ id: 2, at: null, doc: null });
    expect(await client.query(select, ["{2}"])).toHaveLength(1);
    const prepared = await pglite.query<{ statement: string }>("select statement from pg_prepared_statements");
    expect(prepared.rows.map((r) => r.statement).sort()).toEqual([insert, select].sort());
  });

  it("reports a failing statement with its SQLSTATE and goes on serving", async () => {
    await expect(client.query(insert, [1, "again", null, null, 0])).rejects.toMatchObject({ code: "23505" });
    await expect(client.query(select, ["{x}"])).rejects.toMatchObject({ code: "22P02" });
    expect(await client.query(select, ["{1}"])).toHaveLength(1);
  });

  it("rolls a transaction back when one of its statements fails", async () => {
    const failed = client.transaction(undefined, async (tx) => {
      await tx.run([[insert, [3, "three", null, null, 0]]]);
      await tx.commit([[insert, [1, "duplicate", null, null, 0]]]);
    });
    await expect(failed).rejects.toMatchObject({ code: "23505" });
    expect(await client.query(select, ["{3}"])).toEqual([]);
    const [rows] = await client.transaction(undefined, (tx) => tx.commit([[insert, [3, "three", null, null, 0]]]));
    expect(rows?.[0]).toMatchObject({ id: 3, name: "three" });
    expect(await client.query(select, ["{3}"])).toHaveLength(1);
  });
});
