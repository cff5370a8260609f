/**
 * Bearer tokens for the suites that run with authentication on: HS256 JWTs signed synchronously
 * with node:crypto (so call options can be built inline), with the claims each test needs, and
 * call options that present them. The server verifies them with jose, as it would any token.
 */
import { createHmac } from "node:crypto";

/** The AUTH_JWT_SECRET of the test apps (≥ 32 bytes, as config.ts demands). */
export const TEST_JWT_SECRET = "mplp-context-test-secret-0123456789abcdef";
/** The issuer and audience the test apps require when a suite configures them. */
export const TEST_ISSUER = "https://issuer.test";
export const TEST_AUDIENCE = "mplp-context";

const b64url = (value: unknown): string => Buffer.from(typeof value === "string" ? value : JSON.stringify(value)).toString("base64url");

/** A JWS compact token over `claims`, signed HS256 with `secret` (header overridable for hostile tests). */
export function signHs256(claims: Record<string, unknown>, secret: string = TEST_JWT_SECRET, header: Record<string, unknown> = { alg: "HS256", typ: "JWT" }): string {
  const input = `${b64url(header)}.${b64url(claims)}`;
  return `${input}.${createHmac("sha256", secret).update(input).digest("base64url")}`;
}

export interface TokenOptions {
  /** Seconds from now until exp (negative: already expired). Default 3600. */
  readonly expiresInS?: number;
  readonly issuer?: string;
  readonly audience?: string;
  readonly secret?: string;
}

/** A token whose `sub` is `principal`. */
export function tokenFor(principal: string, options: TokenOptions = {}): string {
  const now = Math.floor(Date.now() / 1000);
  return signHs256(
    {
      sub: principal,
      iat: now,
      exp: now + (options.expiresInS ?? 3600),
      ...(options.issuer === undefined ? {} : { iss: options.issuer }),
      ...(options.audience === undefined ? {} : { aud: options.audience }),
    },
    options.secret,
  );
}

/** Metadata presenting `token`. */
export const bearer = (token: string): Readonly<Record<string, string>> => ({ authorization: `Bearer ${token}` });

/** Call options presenting `token`, plus any extra metadata (e.g. an x-principal-id to be ignored). */
export const withToken = (token: string, extra: Readonly<Record<string, string>> = {}): { readonly metadata: Readonly<Record<string, string>> } => ({
  metadata: { ...extra, ...bearer(token) },
});

/** The environment of an app that verifies the test tokens. */
export const JWT_ENV: Readonly<Record<string, string>> = { AUTH_JWT_SECRET: TEST_JWT_SECRET };
