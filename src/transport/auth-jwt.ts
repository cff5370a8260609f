/**
 * Bearer-token verification with jose: the signature against the configured key (HS256 secret,
 * an RS256/ES256 public key, or a local JSON Web Key Set), `exp`/`nbf` with the configured clock
 * skew, `iss` and `aud` when configured, and a `sub` that is a usable principal. The algorithm
 * list is pinned to the key, so `alg: none` and algorithm confusion (an RS256 public key used as
 * an HS256 secret) are refused by construction.
 *
 * Verified tokens are remembered until they expire (a bounded map keyed by the token's SHA-256, so
 * 10 000 entries cost a few MiB whatever the tokens' size), so a client sending the same token on
 * every call costs one signature check, not one per call.
 */
import { createLocalJWKSet, errors, jwtVerify, type JWTVerifyGetKey, type JWTVerifyOptions } from "jose";
import { createHash, type KeyObject } from "node:crypto";
import type { JwtConfig } from "../config.js";
import { AppError } from "../domain/app-error.js";
import { LIMITS } from "../domain/limits.js";

/** Who a verified token names, and until when it may be used (epoch ms, skew included). */
export interface VerifiedToken {
  readonly principal: string;
  readonly expiresAt: number;
}

/** Tokens longer than this are refused unread: no honest JWT is this large, and parsing costs. */
export const MAX_TOKEN_CHARS = 8192;
/** Verified tokens remembered at most; the oldest is forgotten first. */
const DEFAULT_CACHE_ENTRIES = 10_000;
const CONTROL = /[\u0000-\u001f\u007f]/;

/** The UNAUTHORIZED error every token failure becomes; `why` is safe to show (never the token). */
export function unauthenticated(why: string): AppError {
  return new AppError("UNAUTHORIZED", `unauthenticated: ${why}`);
}

/** A client-safe reason for a jose failure: which check failed, never the token or the key. */
function reasonOf(error: unknown): string {
  if (error instanceof errors.JWTExpired) return "the token has expired";
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.claim === "iss") return "the token's issuer is not accepted";
    if (error.claim === "aud") return "the token's audience is not accepted";
    if (error.claim === "nbf") return "the token is not valid yet";
    return `the token's ${error.claim} claim is missing or invalid`;
  }
  if (error instanceof errors.JOSEAlgNotAllowed) return "the token's signing algorithm is not accepted";
  if (error instanceof errors.JWSSignatureVerificationFailed) return "the token's signature does not verify";
  if (error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWKSMultipleMatchingKeys) return "no key matches the token";
  return "the token is malformed";
}

export interface TokenVerifierOptions {
  /** Verified tokens remembered at most (default 10 000). */
  readonly cacheEntries?: number;
  /** Now, in epoch ms (tests). */
  readonly now?: () => number;
}

/** Verifies bearer tokens against one configuration. */
export class TokenVerifier {
  private readonly key: Uint8Array | KeyObject | JWTVerifyGetKey;
  private readonly options: JWTVerifyOptions;
  private readonly cache = new Map<string, VerifiedToken>();
  private readonly cacheEntries: number;
  private readonly now: () => number;
  private readonly skewMs: number;

  constructor(config: JwtConfig, options: TokenVerifierOptions = {}) {
    const keys = config.keys;
    let algorithms: string[];
    switch (keys.kind) {
      case "secret":
        this.key = keys.secret;
        algorithms = ["HS256"];
        break;
      case "public-key":
        this.key = keys.key;
        algorithms = [keys.algorithm];
        break;
      case "jwks":
        this.key = createLocalJWKSet({ keys: keys.jwks.keys.map((k) => ({ ...k })) });
        algorithms = ["RS256", "ES256"];
        break;
    }
    this.options = {
      algorithms,
      clockTolerance: config.clockSkewSeconds,
      // A token without exp would be valid forever, and a stream could never be ended on expiry.
      requiredClaims: ["exp", "sub"],
      ...(config.issuer === undefined ? {} : { issuer: config.issuer }),
      ...(config.audience === undefined || config.audience.length === 0 ? {} : { audience: [...config.audience] }),
    };
    this.skewMs = config.clockSkewSeconds * 1000;
    this.cacheEntries = options.cacheEntries ?? DEFAULT_CACHE_ENTRIES;
    this.now = options.now ?? Date.now;
  }

  /** The token's principal and usable-until time; throws UNAUTHORIZED saying which check failed. */
  async verify(token: string): Promise<VerifiedToken> {
    if (token.length === 0 || token.length > MAX_TOKEN_CHARS) throw unauthenticated("the token is malformed");
    const key = createHash("sha256").update(token).digest("base64");
    const cached = this.cache.get(key);
    if (cached !== undefined) {
      if (cached.expiresAt > this.now()) return cached;
      this.cache.delete(key);
      throw unauthenticated("the token has expired");
    }
    let payload;
    try {
      ({ payload } = await jwtVerify(token, this.key as Parameters<typeof jwtVerify>[1], { ...this.options, currentDate: new Date(this.now()) }));
    } catch (error) {
      throw unauthenticated(reasonOf(error));
    }
    const sub = payload.sub;
    if (typeof sub !== "string" || sub.trim() === "" || [...sub].length > LIMITS.principalChars || CONTROL.test(sub)) {
      throw unauthenticated(`the token's sub must be 1..${LIMITS.principalChars} characters without control characters`);
    }
    const verified: VerifiedToken = { principal: sub, expiresAt: (payload.exp as number) * 1000 + this.skewMs };
    this.remember(key, verified);
    return verified;
  }

  /** Tokens remembered now (tests). */
  get cachedTokens(): number {
    return this.cache.size;
  }

  private remember(key: string, verified: VerifiedToken): void {
    if (this.cache.size >= this.cacheEntries) {
      // Expired entries go first; if none, the oldest (Map keeps insertion order).
      const now = this.now();
      for (const [t, v] of this.cache) if (v.expiresAt <= now) this.cache.delete(t);
      while (this.cache.size >= this.cacheEntries) {
        const oldest = this.cache.keys().next();
        if (oldest.done === true) break;
        this.cache.delete(oldest.value);
      }
    }
    this.cache.set(key, verified);
  }
}
