/**
 * How the store sends SQL: statement text written once per shape (constants of the store's
 * *-sql.ts files, never built per call), parameters apart from it, on postgres.js as named prepared
 * statements (parsed and planned once per connection), on PGlite the same in-process.
 *
 * A call waits for the database once: a statement that stands alone runs in no transaction (it is
 * atomic by itself), and a transaction's statements are sent together — BEGIN with the first
 * batch, COMMIT with the last — on one connection (postgres.js pipelines what is written without
 * waiting for each answer). A deadline reaches Postgres without a transaction: when it passes, the
 * running statement is cancelled (a CancelRequest on a side connection, SQLSTATE 57014 → TIMEOUT).
 * PGlite runs a statement synchronously on this thread: nothing can interrupt it, so its deadline
 * is checked before each statement.
 *
 * Every statement and every wait is counted (`counters`): the bench report and a test hold each
 * method to its round trips.
 */
import type { PGlite } from "@electric-sql/pglite";
import type postgres from "postgres";
import type { Tracer } from "@opentelemetry/api";
import { AppError } from "../domain/app-error.js";
import { PglitePrepared } from "./pglite-prepared.js";
import { traceStatement } from "./query-tracing.js";

/** A row as the driver returns it, keyed by column name. */
export type Row = Record<string, unknown>;

/** One statement to send: its text (a constant) and its parameters. */
export type Sent = readonly [text: string, params: readonly unknown[]];

/** What has been sent since start-up. */
export interface SqlCounters {
  /** Statements sent (BEGIN and COMMIT included). */
  readonly statements: number;
  /** Times a caller waited for the database: one per lone statement, one per batch of a transaction. */
  readonly roundTrips: number;
  /** Transactions begun. */
  readonly transactions: number;
}

/** Statements of one transaction. Each method sends its statements together and waits once. */
export interface SqlTransaction {
  /** Sends the statements (after BEGIN, the first time) and resolves with each one's rows. */
  run(statements: readonly Sent[]): Promise<Row[][]>;
  /** Sends the statements and COMMIT together: the transaction is over when this resolves. */
  commit(statements: readonly Sent[]): Promise<Row[][]>;
}

export interface SqlClient {
  readonly kind: "postgres" | "pglite";
  /** One statement on its own: atomic without a transaction; cancelled when `deadline` (epoch ms) passes. */
  query(text: string, params: readonly unknown[], deadline?: number): Promise<Row[]>;
  /**
   * A transaction on one connection. It commits when `work` has called commit(), or after `work`
   * resolves (one more round trip); it rolls back when `work` throws. The deadline cancels
   * whatever statement is running when it passes.
   */
  transaction<T>(deadline: number | undefined, work: (tx: SqlTransaction) => Promise<T>): Promise<T>;
  readonly counters: SqlCounters;
}

function deadlinePassed(): AppError {
  return new AppError("TIMEOUT", "the deadline passed before the database finished the work");
}

class Counting {
  statements = 0;
  roundTrips = 0;
  transactions = 0;

  snapshot(): SqlCounters {
    return { statements: this.statements, roundTrips: this.roundTrips, transactions: this.transactions };
  }
}

/** Milliseconds to the deadline; throws TIMEOUT when none are left. Infinity without one. */
function leftMs(deadline: number | undefined): number {
  if (deadline === undefined) return Number.POSITIVE_INFINITY;
  const left = deadline - Date.now();
  if (left <= 0) throw deadlinePassed();
  return left;
}

/** postgres.js's pending query: a promise that also cancels. */
type Pending = postgres.PendingQuery<postgres.Row[]>;

/** setTimeout fires at once for delays beyond this; farther deadlines need no timer. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** How often, and how many times, a cancelled statement that still runs is asked again. */
export const CANCEL_RETRY_MS = 100;
export const CANCEL_RETRIES = 50;

/**
 * Cancels `pending` statements still running when the deadline passes (postgres.js drops one not
 * yet sent, and asks the server to cancel the one it runs). Returns the timer's clearer.
 *
 * Postgres ignores a CancelRequest that reaches the backend between two messages of the statement
 * (after its Parse/Describe, before its Bind — postgres.js prepares a new shape in two steps — or
 * before it has read the query at all), and the statement then waits out statement_timeout. So
 * while one has not settled, the cancel is sent again every CANCEL_RETRY_MS. postgres.js forgets
 * its canceller after one use; the one kept here is its own (`cancel(query)` in its index.js),
 * which waits for the statement to be the one running before it sends anything.
 */
export function cancelAtDeadline(deadline: number | undefined, pending: readonly Pending[]): () => void {
  const left = leftMs(deadline);
  if (left > MAX_TIMER_MS) return () => undefined;
  let retry: ReturnType<typeof setInterval> | undefined;
  const timer = setTimeout(() => {
    const running = pending.map((query) => {
      const again = (query as unknown as { canceller?: (query: Pending) => unknown }).canceller;
      const entry = { query, again, settled: false };
      query.then(
        () => (entry.settled = true),
        () => (entry.settled = true),
      );
      void query.cancel();
      return entry;
    });
    let tries = 0;
    retry = setInterval(() => {
      const unsettled = running.filter((entry) => !entry.settled && typeof entry.again === "function");
      if (unsettled.length === 0 || ++tries > CANCEL_RETRIES) return clearInterval(retry);
      for (const entry of unsettled) void Promise.resolve(entry.again!(entry.query)).catch(() => undefined);
    }, CANCEL_RETRY_MS);
  }, left);
  return () => {
    clearTimeout(timer);
    clearInterval(retry);
  };
}

/** The first failure among settled statements (a pipelined transaction's later ones fail as "aborted"). */
async function allOrFirstError(pending: readonly Promise<Row[]>[]): Promise<Row[][]> {
  const settled = await Promise.allSettled(pending);
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === "rejected");
  if (failed !== undefined) throw failed.reason;
  return settled.map((s) => (s as PromiseFulfilledResult<Row[]>).value);
}

/** The SqlClient on postgres.js. */
export class PostgresSqlClient implements SqlClient {
  readonly kind = "postgres";
  private readonly count = new Counting();

  constructor(private readonly sql: postgres.Sql) {}

  get counters(): SqlCounters {
    return this.count.snapshot();
  }

  async query(text: string, params: readonly unknown[], deadline?: number): Promise<Row[]> {
    // A deadline already passed sends nothing (postgres.js sends a query only once awaited): count nothing.
    leftMs(deadline);
    this.count.statements += 1;
    this.count.roundTrips += 1;
    const pending = this.send(this.sql, text, params);
    const clear = cancelAtDeadline(deadline, [pending]);
    try {
      return await pending;
    } finally {
      clear();
    }
  }

  async transaction<T>(deadline: number | undefined, work: (tx: SqlTransaction) => Promise<T>): Promise<T> {
    leftMs(deadline);
    this.count.transactions += 1;
    const reserved = await this.sql.reserve();
    let begun = false;
    let ended = false;
    const batch = async (statements: readonly Sent[], end: boolean): Promise<Row[][]> => {
      if (ended) throw new Error("the transaction has already ended");
      const sent: Pending[] = [];
      // Written in this order, without waiting between them: one round trip for the lot.
      if (!begun) sent.push(this.send(reserved, "begin", []));
      for (const [text, params] of statements) sent.push(this.send(reserved, text, params));
      if (end) sent.push(this.send(reserved, "commit", []));
      begun = true;
      ended = end;
      this.count.statements += sent.length;
      this.count.roundTrips += 1;
      const clear = cancelAtDeadline(deadline, sent);
      try {
        const rows = await allOrFirstError(sent);
        // Drop BEGIN's and COMMIT's (empty) results: the caller sees its own statements'.
        return rows.slice(sent.length - statements.length - (end ? 1 : 0), end ? -1 : undefined);
      } finally {
        clear();
      }
    };
    try {
      const result = await work({ run: (s) => batch(s, false), commit: (s) => batch(s, true) });
      if (!ended) await batch([], true);
      return result;
    } catch (error) {
      if (begun && !ended) {
        this.count.statements += 1;
        this.count.roundTrips += 1;
        // After a failure inside a transaction COMMIT already rolled back; this covers the rest.
        await reserved.unsafe("rollback").catch(() => undefined);
      }
      throw error;
    } finally {
      reserved.release();
    }
  }

  private send(on: postgres.Sql, text: string, params: readonly unknown[]): Pending {
    // `prepare: true`: a named prepared statement per connection, keyed by the text.
    return on.unsafe(text, params as postgres.ParameterOrJSON<never>[], { prepare: true });
  }
}

/**
 * The SqlClient on PGlite: one connection, statements run in turn, each a named prepared statement
 * (pglite-prepared.ts); "round trips" count the same batches as on Postgres.
 */
export class PgliteSqlClient implements SqlClient {
  readonly kind = "pglite";
  private readonly count = new Counting();
  private readonly prepared: PglitePrepared;

  constructor(
    private readonly pglite: PGlite,
    private readonly tracer?: Tracer,
  ) {
    this.prepared = new PglitePrepared(pglite);
  }

  get counters(): SqlCounters {
    return this.count.snapshot();
  }

  async query(text: string, params: readonly unknown[], deadline?: number): Promise<Row[]> {
    leftMs(deadline);
    this.count.statements += 1;
    this.count.roundTrips += 1;
    // As PGlite's own query: after any transaction running, under the query lock, then synced.
    return this.pglite._runExclusiveTransaction(() =>
      this.pglite._runExclusiveQuery(async () => {
        const rows = await this.run(text, params);
        await this.pglite.syncToFs();
        return rows;
      }),
    );
  }

  async transaction<T>(deadline: number | undefined, work: (tx: SqlTransaction) => Promise<T>): Promise<T> {
    leftMs(deadline);
    this.count.transactions += 1;
    // BEGIN and COMMIT, counted as a Postgres transaction would send them (with the first and last batch).
    this.count.statements += 2;
    let committed = false;
    // PGlite's transaction holds the transaction lock; its statements take the query lock, as its tx.query does.
    const result = await this.pglite.transaction(async () => {
      const batch = async (statements: readonly Sent[], end: boolean): Promise<Row[][]> => {
        if (committed) throw new Error("the transaction has already ended");
        committed = end;
        this.count.statements += statements.length;
        this.count.roundTrips += 1;
        const rows: Row[][] = [];
        for (const [text, params] of statements) {
          leftMs(deadline);
          rows.push(await this.pglite._runExclusiveQuery(() => this.run(text, params)));
        }
        return rows;
      };
      return work({ run: (s) => batch(s, false), commit: (s) => batch(s, true) });
    });
    if (!committed) this.count.roundTrips += 1;
    return result;
  }

  private run(text: string, params: readonly unknown[]): Promise<Row[]> {
    return traceStatement(this.tracer, text, params, () => this.prepared.run(text, params));
  }
}
