/**
 * One CLIENT span per SQL statement, a child of the span active when the statement was issued
 * (the gRPC call's), named and attributed after the OpenTelemetry database conventions:
 * `db.system.name` "postgresql", `db.operation.name` (SELECT, INSERT…), `db.collection.name` when
 * the statement names its table plainly, `db.query.text` (the statement as sent: drizzle's
 * `$1, $2…` placeholders, never the parameter values), and on failure an ERROR status with the
 * SQLSTATE in `db.response.status_code` and `error.type`. The error's message is left out on
 * purpose: Postgres quotes the offending value in some of them (`invalid input syntax for type
 * uuid: "…"`), and a span must never carry a parameter value.
 *
 * drizzle and the drivers have no query hook with an end, so the client itself is wrapped, in a
 * Proxy that changes nothing else about it:
 * - postgres.js: drizzle's postgres-js session runs every statement through `client.unsafe(text,
 *   params)`, and a transaction's through the `sql` that `client.begin(fn)` hands to `fn` (a
 *   savepoint's through the one `savepoint(fn)` hands on): `unsafe`, `begin`, `savepoint` and
 *   `reserve` are wrapped, recursively. The tagged template (`` sql`…` ``) is not: drizzle never
 *   uses it, and a fragment built with it may never run, which would leave its span open.
 * - PGlite: `query`, `exec` and `transaction` (whose callback gets a wrapped transaction).
 *
 * Only statements issued under a recording span are traced: a call's queries when tracing
 * exports; not the sweeper's, the watch fan-out's or the migrations (no call: they would each be a
 * trace of one span). Without a tracer nothing is wrapped at all: tracing off costs nothing.
 */
import { context, SpanKind, SpanStatusCode, trace, type Attributes, type Span, type Tracer } from "@opentelemetry/api";
import type { PGlite, Transaction } from "@electric-sql/pglite";
import type postgres from "postgres";

/** The statements' operation names, as the first one found in the text. */
const OPERATION = /\b(select|insert|update|delete|merge|with|begin|commit|rollback|savepoint|release|set|show|create|alter|drop|truncate|lock|copy|values|call|do|explain|analyze|vacuum|listen|notify)\b/i;
/** After `with`, the statement's operation is the first data-modifying one; a read-only WITH is a SELECT. */
const MODIFYING = /\b(insert|update|delete|merge)\b/i;
/** Every table a WITH statement's data-modifying parts write. */
const WRITTEN = /\b(?:insert\s+into|update(?:\s+only)?|delete\s+from(?:\s+only)?|merge\s+into)\s+("[^"]+"|[a-z_][\w$]*(?:\.(?:"[^"]+"|[a-z_][\w$]*))?)/gi;
/** A table name as drizzle writes it: quoted or plain, optionally schema-qualified. */
const NAME = String.raw`((?:"[^"]+"|[a-z_][\w$]*)(?:\.(?:"[^"]+"|[a-z_][\w$]*))?)`;
const COLLECTION: Readonly<Record<string, RegExp>> = {
  // Not a name followed by "(": that is a function, as in extract(epoch from now()).
  SELECT: new RegExp(String.raw`\bfrom\s+${NAME}(?![\w$.]|\s*\()`, "i"),
  INSERT: new RegExp(String.raw`\binsert\s+into\s+${NAME}`, "i"),
  UPDATE: new RegExp(String.raw`\bupdate\s+(?:only\s+)?${NAME}`, "i"),
  DELETE: new RegExp(String.raw`\bdelete\s+from\s+(?:only\s+)?${NAME}`, "i"),
};
/** A quoted string literal: scrubbed from text that came without parameters (see queryAttributes). */
const STRING_LITERAL = /'(?:[^']|'')*'/g;
/** SQLSTATE: five digits or capital letters. */
const SQLSTATE = /^[0-9A-Z]{5}$/;

/** What a statement's span says about it. */
export interface QueryDescription {
  readonly name: string;
  readonly attributes: Attributes;
}

/**
 * The span name and attributes of one statement. `withParameters` says whether its values travel
 * apart from the text (drizzle always sends them so); text sent without any has its string literals
 * replaced by `?`, in case a value was ever spliced into it.
 */
export function describeQuery(text: string, withParameters: boolean): QueryDescription {
  let operation = OPERATION.exec(text)?.[1]?.toUpperCase();
  let collection: string | undefined;
  if (operation === "WITH") {
    // One statement of data-modifying CTEs (the store's change statement) writes several tables:
    // the conventions name a collection only when there is one.
    operation = MODIFYING.exec(text)?.[1]?.toUpperCase() ?? "SELECT";
    const written = new Set([...text.matchAll(WRITTEN)].map((m) => m[1]!.replaceAll('"', "")));
    collection = operation === "SELECT" ? COLLECTION["SELECT"]!.exec(text)?.[1] : written.size === 1 ? [...written][0] : undefined;
  } else if (operation !== undefined) {
    collection = COLLECTION[operation]?.exec(text)?.[1];
  }
  const attributes: Attributes = {
    "db.system.name": "postgresql",
    "db.query.text": withParameters ? text : text.replace(STRING_LITERAL, "'?'"),
    ...(operation === undefined ? {} : { "db.operation.name": operation }),
    ...(collection === undefined ? {} : { "db.collection.name": collection.replaceAll('"', "") }),
  };
  // The conventions' span name: "{operation} {target}", else the operation, else the system.
  const name = operation === undefined ? "postgresql" : collection === undefined ? operation : `${operation} ${collection.replaceAll('"', "")}`;
  return { name, attributes };
}

/** The statement's span under the active one, or undefined when there is nothing to be part of. */
function startQuerySpan(tracer: Tracer, text: string, parameters: unknown, common: Attributes): Span | undefined {
  const active = context.active();
  if (trace.getSpan(active)?.isRecording() !== true) return undefined;
  const { name, attributes } = describeQuery(text, Array.isArray(parameters) && parameters.length > 0);
  return tracer.startSpan(name, { kind: SpanKind.CLIENT, attributes: { ...common, ...attributes } }, active);
}

/** The SQLSTATE of a driver error, walking drizzle's `cause` chain; undefined for other failures. */
function sqlStateOf(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && typeof current === "object" && current !== null; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === "string" && SQLSTATE.test(code)) return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

function endQuerySpan(span: Span, error?: unknown): void {
  if (error !== undefined) {
    const state = sqlStateOf(error);
    const type = state ?? (error instanceof Error ? error.name : "Error");
    span.setAttribute("error.type", type);
    if (state !== undefined) span.setAttribute("db.response.status_code", state);
    // No message: see the top of the file.
    span.setStatus({ code: SpanStatusCode.ERROR, message: state === undefined ? type : `SQLSTATE ${state}` });
  }
  span.end();
}

/** Ends `span` when `result` settles, without running or otherwise touching it. */
function endWhenSettled(span: Span | undefined, result: PromiseLike<unknown>): void {
  if (span === undefined) return;
  // Promise.prototype.then, not result.then: postgres.js starts a query on its own `then`, and
  // drizzle still has to call `.values()` on it. This only listens (and marks nothing unhandled:
  // the caller's own await still sees the rejection).
  Promise.prototype.then.call(
    result,
    () => endQuerySpan(span),
    (error: unknown) => endQuerySpan(span, error ?? new Error("rejected")),
  );
}

type AnyFunction = (...args: never[]) => unknown;

/** Replaces the callback among `args` (the last function) by `wrap(callback)`. */
function withCallback(args: unknown[], wrap: (callback: AnyFunction) => AnyFunction): unknown[] {
  const at = args.findLastIndex((a) => typeof a === "function");
  if (at < 0) return args;
  const copy = [...args];
  copy[at] = wrap(copy[at] as AnyFunction);
  return copy;
}

/** The server and database a postgres.js client talks to, on every span of it. */
function postgresAttributes(sql: postgres.Sql): Attributes {
  const options = (sql as { options?: { host?: unknown; port?: unknown; database?: unknown } }).options;
  const host = Array.isArray(options?.host) ? options.host[0] : undefined;
  const port = Array.isArray(options?.port) ? options.port[0] : undefined;
  return {
    ...(typeof options?.database === "string" ? { "db.namespace": options.database } : {}),
    ...(typeof host === "string" ? { "server.address": host } : {}),
    ...(typeof port === "number" ? { "server.port": port } : {}),
  };
}

function tracePostgres<S extends postgres.Sql | postgres.TransactionSql>(sql: S, tracer: Tracer, common: Attributes): S {
  const target = sql as unknown as Record<string, (...args: unknown[]) => unknown>;
  const inner = (callback: AnyFunction): AnyFunction =>
    ((scoped: postgres.TransactionSql) => (callback as (s: unknown) => unknown)(tracePostgres(scoped, tracer, common))) as AnyFunction;
  const wrapped: Record<string, unknown> = {
    unsafe: (...args: unknown[]) => {
      const [text, parameters] = args;
      const span = typeof text === "string" ? startQuerySpan(tracer, text, parameters, common) : undefined;
      const pending = target["unsafe"]!(...args) as PromiseLike<unknown>;
      endWhenSettled(span, pending);
      return pending;
    },
    begin: (...args: unknown[]) => target["begin"]!(...withCallback(args, inner)),
    savepoint: (...args: unknown[]) => target["savepoint"]!(...withCallback(args, inner)),
    reserve: async () => tracePostgres((await target["reserve"]!()) as postgres.ReservedSql, tracer, common),
  };
  return new Proxy(sql, {
    get(object, property, receiver) {
      if (typeof property === "string" && Object.hasOwn(wrapped, property) && typeof Reflect.get(object, property) === "function") {
        return wrapped[property];
      }
      return Reflect.get(object, property, receiver) as unknown;
    },
  });
}

/** Wraps `query` and `exec` of PGlite or of a PGlite transaction; binds the rest to the original (PGlite has #private fields). */
function tracePglite<P extends PGlite | Transaction>(client: P, tracer: Tracer, extra: Record<string, unknown> = {}): P {
  const target = client as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  const wrapped: Record<string, unknown> = {
    query: (...args: unknown[]) => {
      const [text, parameters] = args;
      const span = typeof text === "string" ? startQuerySpan(tracer, text, parameters, {}) : undefined;
      const result = target["query"]!.apply(client, args);
      endWhenSettled(span, result);
      return result;
    },
    exec: (...args: unknown[]) => {
      const [text] = args;
      const span = typeof text === "string" ? startQuerySpan(tracer, text, undefined, {}) : undefined;
      const result = target["exec"]!.apply(client, args);
      endWhenSettled(span, result);
      return result;
    },
    ...extra,
  };
  return new Proxy(client, {
    get(object, property) {
      if (typeof property === "string" && Object.hasOwn(wrapped, property)) return wrapped[property];
      const value = Reflect.get(object, property, object) as unknown;
      return typeof value === "function" ? (value as AnyFunction).bind(object) : value;
    },
  });
}

function isPglite(client: postgres.Sql | PGlite): client is PGlite {
  return typeof client !== "function";
}

/**
 * The client with a span per statement when `tracer` is given, else the client itself (unchanged,
 * not wrapped): pass the tracer only when tracing exports.
 */
export function traceQueries<C extends postgres.Sql | PGlite>(client: C, tracer: Tracer | undefined): C {
  if (tracer === undefined) return client;
  if (!isPglite(client)) return tracePostgres(client, tracer, postgresAttributes(client)) as C;
  const pglite = client as PGlite;
  const transaction = (callback: (tx: Transaction) => Promise<unknown>) =>
    pglite.transaction((tx) => callback(tracePglite(tx, tracer)));
  return tracePglite(pglite, tracer, { transaction }) as C;
}

/**
 * Runs one statement under its span: for a client that sends SQL past the driver methods wrapped
 * here (PGlite's prepared statements, pglite-prepared.ts). Without a tracer, just runs it.
 */
export function traceStatement<T>(tracer: Tracer | undefined, text: string, parameters: readonly unknown[], run: () => Promise<T>): Promise<T> {
  if (tracer === undefined) return run();
  const span = startQuerySpan(tracer, text, parameters, {});
  const result = run();
  endWhenSettled(span, result);
  return result;
}
