/**
 * Opaque page tokens (AIP-158). A token holds the keyset position after the last item returned and
 * a fingerprint of the query it came from, so a token replayed with another filter is refused
 * instead of silently returning the wrong rows.
 */
import { AppError } from "./app-error.js";
import { LIMITS } from "./limits.js";

const VERSION = 1;

interface TokenBody<P> {
  readonly v: number;
  /** Fingerprint of the query (filter) the token belongs to. */
  readonly q: string;
  readonly p: P;
}

/** FNV-1a (32 bit) of the query's canonical JSON: enough to tell queries apart, not a secret. */
export function fingerprint(query: unknown): string {
  const text = canonicalJson(query);
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash.toString(36);
}

/** JSON with object keys sorted, so equal values encode equally. */
export function canonicalJson(value: unknown): string {
  if (value === undefined) return "null";
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
}

export function encodePageToken<P>(position: P, query: unknown): string {
  const body: TokenBody<P> = { v: VERSION, q: fingerprint(query), p: position };
  return Buffer.from(JSON.stringify(body), "utf8").toString("base64url");
}

function badToken(description: string): AppError {
  return AppError.validation([{ field: "page_token", description }]);
}

/**
 * Decodes a token made by encodePageToken for the same query; `check` narrows its position.
 * Returns undefined for the empty token (the first page).
 */
export function decodePageToken<P>(
  token: string,
  query: unknown,
  check: (position: unknown) => position is P,
): P | undefined {
  if (token === "") return undefined;
  let body: Partial<TokenBody<unknown>>;
  try {
    if (token.length > 1024 || !/^[A-Za-z0-9_-]+$/.test(token)) throw new Error("not base64url");
    body = JSON.parse(Buffer.from(token, "base64url").toString("utf8")) as Partial<TokenBody<unknown>>;
  } catch {
    throw badToken("is not a page token from this service");
  }
  if (body === null || typeof body !== "object" || body.v !== VERSION || !check(body.p)) {
    throw badToken("is not a page token from this service");
  }
  if (body.q !== fingerprint(query)) {
    throw badToken("belongs to a query with another filter: repeat the first request's filter");
  }
  return body.p;
}

/** page_size as the contract reads it: 0 → default, above the maximum → the maximum. */
export function effectivePageSize(pageSize: number): number {
  if (pageSize < 0) {
    throw AppError.validation([{ field: "page_size", description: "must not be negative" }]);
  }
  if (pageSize === 0) return LIMITS.pageSizeDefault;
  return Math.min(pageSize, LIMITS.pageSizeMax);
}

/**
 * ListContexts counts total_size this far and no further: the count is exact up to it, and
 * TOTAL_SIZE_CAP + 1 means "more than TOTAL_SIZE_CAP" (AIP-158 lets total_size be an estimate).
 * Counting every match scanned all of them on every page, a cost growing with the table (1.3 s
 * at 1,000,000 readable contexts here); counting up to 1,000 (the largest page) costs a few ms,
 * 10,000 already 100–200 ms.
 */
export const TOTAL_SIZE_CAP = 1_000;

/** The keyset position of lists ordered by a time then an id: (created_at | joined_at, id). */
export interface TimeIdPosition {
  /** ISO time of the last item returned. */
  readonly t: string;
  readonly id: string;
  /**
   * total_size as the first page counted it, carried so later pages need not count again (they
   * report it unchanged). Absent in tokens of lists that carry none, or made before it existed.
   */
  readonly n?: number;
}

export function isTimeIdPosition(p: unknown): p is TimeIdPosition {
  const o = p as TimeIdPosition | null;
  return (
    typeof o === "object" &&
    o !== null &&
    typeof o.t === "string" &&
    !Number.isNaN(Date.parse(o.t)) &&
    typeof o.id === "string" &&
    (o.n === undefined || (Number.isSafeInteger(o.n) && o.n >= 0))
  );
}
