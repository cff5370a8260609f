import { randomUUID } from "node:crypto";
import { drizzle } from "drizzle-orm/postgres-js";
import postgres from "postgres";
import { describe, expect, it } from "vitest";
import { AppError } from "../../src/domain/app-error.js";
import { PgContextStore } from "../../src/store/context-store.js";
import type { Database } from "../../src/store/database.js";
import * as schema from "../../src/store/schema.js";
import { PostgresSqlClient } from "../../src/store/sql-client.js";
import { toStoreError } from "../../src/store/sql-errors.js";
import { caught, expectClientSafe } from "../support/app-error-assertions.js";
import { makeContext } from "../support/context-fixtures.js";
import { creation } from "../support/store-seeding.js";

describe(toStoreError.name, () => {
  /** An error shaped as drizzle throws it: the driver's error as the cause of a query error. */
  const wrapped = (cause: object) => Object.assign(new Error("Failed query: select secret from t where x = $1"), { cause });
  const classify = (cause: object) => toStoreError(wrapped(cause));

  it("finds the SQLSTATE down the cause chain and keeps the original as cause", () => {
    const original = wrapped({ code: "23505", constraint_name: "contexts_owner_name_live_key" });
    const error = toStoreError(original);
    expect(error.reason).toBe("CONTEXT_EXISTS");
    expect(error.cause).toBe(original);
    expect(classify({ code: "23505", constraint: "contexts_owner_name_live_key" }).reason).toBe("CONTEXT_EXISTS");
    expect(classify({ code: "23505", constraint_name: "request_keys_pkey" }).reason).toBe("INTERNAL_ERROR");
    expect(classify({ code: "23505", constraint_name: "participants_context_agent_key" }).reason).toBe("PARTICIPANT_ALREADY_EXISTS");
    expect(classify({ code: "23505", constraint: "participants_context_agent_key" }).reason).toBe("PARTICIPANT_ALREADY_EXISTS");
    expect(classify({ code: "23505", constraint_name: "participants_pkey" }).reason).toBe("INTERNAL_ERROR");
  });

  it("maps timeouts, conflicts and lost connections to their reasons", () => {
    expect(classify({ code: "57014" }).reason).toBe("TIMEOUT");
    expect(classify({ code: "40001" }).reason).toBe("SERVICE_UNAVAILABLE");
    expect(classify({ code: "40P01" }).reason).toBe("SERVICE_UNAVAILABLE");
    for (const code of ["08006", "08001", "53300", "57P01", "57P03", "ECONNREFUSED", "ECONNRESET", "CONNECTION_CLOSED", "CONNECTION_ENDED"]) {
      expect(classify({ code }).reason, code).toBe("STORAGE_ERROR");
    }
    const refused = new AggregateError([Object.assign(new Error("connect ECONNREFUSED ::1:5432"), { code: "ECONNREFUSED" })]);
    expect(toStoreError(refused).reason).toBe("STORAGE_ERROR");
  });

  it("reports a database that cannot be reached as STORAGE_ERROR", async () => {
    // Nothing listens on port 1: every connection attempt is refused.
    const client = postgres("postgres://postgres@127.0.0.1:1/nowhere", { max: 1, connect_timeout: 2, onnotice: () => {} });
    const unreachable: Database = {
      kind: "postgres",
      sql: new PostgresSqlClient(client),
      db: drizzle({ client, schema }),
      ping: async () => {},
      close: () => client.end({ timeout: 1 }),
    };
    try {
      const store = new PgContextStore(unreachable);
      const read = await caught(store.getContext({}, randomUUID(), { withState: false }));
      expect(read.reason).toBe("STORAGE_ERROR");
      expectClientSafe(read);
      const write = await caught(store.apply({ deadline: Date.now() + 5_000 }, creation(makeContext())));
      expect(write.reason).toBe("STORAGE_ERROR");
      expectClientSafe(write);
      const batch = await caught(store.applyAll({}, [creation(makeContext()), creation(makeContext())]));
      expect(batch.reason).toBe("STORAGE_ERROR");
      const locked = await caught(
        store.transaction({ deadline: Date.now() + 5_000 }, (tx) => tx.lockBase({ contextId: randomUUID(), withState: false, agents: [] })),
      );
      expect(locked.reason).toBe("STORAGE_ERROR");
    } finally {
      await unreachable.close();
    }
  });

  it("passes AppErrors through and hides anything else behind a generic message", () => {
    const appError = AppError.contextNotFound(randomUUID());
    expect(toStoreError(appError)).toBe(appError);
    const unknown = toStoreError(new Error("relation \"contexts\" does not exist"));
    expect(unknown.reason).toBe("INTERNAL_ERROR");
    expectClientSafe(unknown);
    expectClientSafe(classify({ code: "42P01" }));
  });
});
