/**
 * Database failures → AppError. drizzle wraps driver errors (DrizzleQueryError, whose message holds
 * the SQL and its parameters), so the SQLSTATE is found by walking `.cause`: postgres.js errors
 * carry it as `code`, PGlite's DatabaseError too; connection failures carry a Node or postgres.js
 * code (ECONNREFUSED, CONNECTION_CLOSED, …) instead.
 *
 * Messages here reach clients: they never contain SQL text, parameters or a driver's message.
 * The original error always rides along as `cause`, for the log.
 */
import { AppError, isAppError } from "../domain/app-error.js";
import { CONTEXTS_OWNER_NAME_LIVE_KEY, PARTICIPANTS_CONTEXT_AGENT_KEY } from "./schema.js";

/** What the walk found: the first error in the chain with a code, and that code. */
interface Coded {
  readonly code: string;
  /** The violated constraint or index, when the database named one. */
  readonly constraint: string | undefined;
}

/** Connection-level failures from Node's sockets and from postgres.js. */
const CONNECTION_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
  "CONNECT_TIMEOUT",
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
]);

const SQLSTATE = /^[0-9A-Z]{5}$/;

function stringProperty(value: object, name: string): string | undefined {
  const property = (value as Record<string, unknown>)[name];
  return typeof property === "string" && property !== "" ? property : undefined;
}

/**
 * Finds the first error in the `.cause` chain (and, for AggregateError, its `.errors`) carrying a
 * code. Bounded, since a cause chain may loop.
 */
function findCoded(error: unknown): Coded | undefined {
  const queue: unknown[] = [error];
  const seen = new Set<unknown>();
  while (queue.length > 0 && seen.size < 32) {
    const current = queue.shift();
    if (current === null || typeof current !== "object" || seen.has(current)) continue;
    seen.add(current);
    const code = stringProperty(current, "code");
    if (code !== undefined) {
      // postgres.js names it constraint_name, PGlite constraint.
      const constraint = stringProperty(current, "constraint_name") ?? stringProperty(current, "constraint");
      return { code, constraint };
    }
    queue.push((current as { cause?: unknown }).cause);
    const nested = (current as { errors?: unknown }).errors;
    if (Array.isArray(nested)) queue.push(...nested);
  }
  return undefined;
}

/** The SQLSTATE (or connection code) of a database failure, wherever in its cause chain it is. */
export function sqlStateOf(error: unknown): string | undefined {
  return findCoded(error)?.code;
}

function isStorageUnavailable(code: string): boolean {
  if (CONNECTION_CODES.has(code)) return true;
  if (!SQLSTATE.test(code)) return false;
  // 08: connection exception; 53: insufficient resources (disk full, too many connections…);
  // 57P01-57P05: admin/crash shutdown, cannot connect now, database dropped, idle session timeout;
  // 25006: a write reached a read-only server (a failover in progress).
  return code.startsWith("08") || code.startsWith("53") || /^57P0[1-5]$/.test(code) || code === "25006";
}

/**
 * Classifies any error thrown by database work as the AppError a client sees. AppErrors (thrown by
 * the work itself, or already classified) are returned unchanged.
 */
export function toStoreError(error: unknown): AppError {
  if (isAppError(error)) return error;
  const found = findCoded(error);
  const code = found?.code;
  if (code === "23505" && found?.constraint === CONTEXTS_OWNER_NAME_LIVE_KEY) {
    // The caller may have sent several names (a batch): name none, but say what clashed.
    return new AppError("CONTEXT_EXISTS", "a context with this name already exists for this owner", {
      cause: error,
    });
  }
  if (code === "23505" && found?.constraint === PARTICIPANTS_CONTEXT_AGENT_KEY) {
    // A batch may hold several agents, and the driver's detail (which names the key) is not
    // client-safe: the service checks memberships first and names the agent itself when it can.
    return new AppError("PARTICIPANT_ALREADY_EXISTS", "an agent is already a participant of this context", {
      cause: error,
    });
  }
  if (code === "57014") {
    // query_canceled: our statement_timeout (set from the call's deadline) fired.
    return new AppError("TIMEOUT", "the deadline passed before the database finished the work", {
      cause: error,
    });
  }
  if (code === "40001" || code === "40P01") {
    // Serialization failure or deadlock: the transaction was rolled back whole; a retry is safe.
    return new AppError("SERVICE_UNAVAILABLE", "the database aborted the transaction because of a conflict; please retry", {
      cause: error,
    });
  }
  if (code !== undefined && isStorageUnavailable(code)) {
    return new AppError("STORAGE_ERROR", "the database is unavailable; please retry later", { cause: error });
  }
  return new AppError("INTERNAL_ERROR", "an unexpected database error occurred", { cause: error });
}
