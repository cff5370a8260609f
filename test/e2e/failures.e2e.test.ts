/**
 * What a client sees when the database fails or is slow: a clean status with no SQL, driver text
 * or stack, and (on Postgres) work that stops when the client's deadline passes.
 */
import { status } from "@grpc/grpc-js";
import { sql } from "drizzle-orm";
import postgres from "postgres";
import { describe, expect, it } from "vitest";
import { ContextType } from "../../gen/mplp/context/v1/context_pb.js";
import { ContextService } from "../../gen/mplp/context/v1/context_service_pb.js";
import { describeOnApps } from "./support/app.js";
import { failure } from "./support/failure.js";

const alice = { metadata: { "x-principal-id": "alice" } };


await describeOnApps("database failures over gRPC", (under) => {
  describe("a broken database", () => {
    it("answers INTERNAL with a generic message: no SQL, no driver text, no stack", async () => {
      const client = under.client(ContextService);
      const { context } = await client.createContext({ context: { name: "x", type: ContextType.SEQUENTIAL } }, alice);
      const db = under.app().database.db;
      await db.execute(sql`alter table context_events rename to context_events_gone`);
      try {
        const err = await failure(
          client.updateContext({ context: { contextId: context!.contextId, description: "d" }, updateMask: { paths: ["description"] } }, alice),
        );
        expect([err.code, err.reason, err.message]).toEqual([status.INTERNAL, "INTERNAL_ERROR", "internal error"]);
        expect(JSON.stringify(err)).not.toMatch(/context_events|relation|insert|select|postgres|pglite|at .*\.ts/i);
      } finally {
        await db.execute(sql`alter table context_events_gone rename to context_events`);
      }
      // The failed update was rolled back whole.
      expect((await client.getContext({ contextId: context!.contextId }, alice)).context).toMatchObject({ description: "", revision: 1n });
    });
  });

  describe.runIf(under.kind === "postgres")("deadlines", () => {
    it("stops the database work of a call whose deadline passes: DEADLINE_EXCEEDED and nothing applied", async () => {
      const client = under.client(ContextService);
      const { context } = await client.createContext({ context: { name: "locked", type: ContextType.SEQUENTIAL } }, alice);
      const id = context!.contextId;
      // Two connections: one holds the lock in a transaction, the other looks at pg_stat_activity
      // (which a transaction would see as a frozen snapshot).
      const other = postgres(under.databaseUrl(), { max: 2, onnotice: () => {} });
      try {
        // Another session holds the row lock, so the update waits on it inside Postgres.
        const holder = other.begin(async (tx) => {
          await tx`select 1 from contexts where context_id = ${id} for update`;
          const err = await failure(
            client.updateContext(
              { context: { contextId: id, description: "late" }, updateMask: { paths: ["description"] } },
              { ...alice, deadline: Date.now() + 300 },
            ),
          );
          expect(err.code).toBe(status.DEADLINE_EXCEEDED);
          // Wait until the server's statement was cancelled: no session is left waiting on the lock.
          for (;;) {
            const [row] = await other`select count(*)::int as n from pg_stat_activity where wait_event_type = 'Lock' and datname = current_database()`;
            if (row?.["n"] === 0) break;
            await new Promise((r) => setTimeout(r, 20));
          }
        });
        await holder;
      } finally {
        await other.end({ timeout: 5 });
      }
      // Had the database kept the update waiting, it would have applied once the lock was released.
      const after = await client.getContext({ contextId: id }, alice);
      expect(after.context).toMatchObject({ description: "", revision: 1n });
    });

    it("cancels a read whose deadline passes, with no transaction around it: DEADLINE_EXCEEDED and no statement left running", async () => {
      const client = under.client(ContextService);
      await client.createContext({ context: { name: "listed", type: ContextType.SEQUENTIAL } }, alice);
      const other = postgres(under.databaseUrl(), { max: 2, onnotice: () => {} });
      try {
        // An exclusive table lock makes any read of contexts wait inside Postgres.
        const holder = other.begin(async (tx) => {
          await tx`lock table contexts in access exclusive mode`;
          const err = await failure(client.listContexts({ pageSize: 10 }, { ...alice, deadline: Date.now() + 300 }));
          expect(err.code).toBe(status.DEADLINE_EXCEEDED);
          // The lock is still held: only a cancelled statement stops waiting on it.
          for (;;) {
            const [row] = await other`select count(*)::int as n from pg_stat_activity where wait_event_type = 'Lock' and datname = current_database()`;
            if (row?.["n"] === 0) break;
            await new Promise((r) => setTimeout(r, 20));
          }
        });
        await holder;
      } finally {
        await other.end({ timeout: 5 });
      }
      expect((await client.listContexts({ pageSize: 10 }, alice)).contexts.map((c) => c.name)).toEqual(["listed"]);
    });
  });
  // The sweeper off: its passes (every second by default) read contexts too, and one that began
  // while a test holds the table lock waited on it without a deadline, so the tests' "nothing
  // left waiting on the lock" never came until statement_timeout (30 s, the test's own timeout).
  // That was the flake of "cancels a read…" on CI; with passes every 20 ms it failed every time.
}, { env: { SWEEP_INTERVAL_MS: "600000" } });
