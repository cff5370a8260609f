import { exportJWK, exportSPKI, generateKeyPair, SignJWT } from "jose";
import { createPublicKey } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { JwtConfig } from "../../../src/config.js";
import { AppError } from "../../../src/domain/app-error.js";
import { TokenVerifier } from "../../../src/transport/auth-jwt.js";
import { signHs256, TEST_JWT_SECRET } from "../../e2e/support/tokens.js";

const NOW_S = 1_900_000_000;
const secretConfig = (extra: Partial<JwtConfig> = {}): JwtConfig => ({
  keys: { kind: "secret", secret: new TextEncoder().encode(TEST_JWT_SECRET) },
  issuer: undefined,
  audience: undefined,
  clockSkewSeconds: 30,
  ...extra,
});
const at = (seconds: number) => () => seconds * 1000;

/** The reason a verification failed, or "ok" with the principal. */
async function outcome(verifier: TokenVerifier, token: string): Promise<string> {
  try {
    return `ok ${(await verifier.verify(token)).principal}`;
  } catch (error) {
    if (!(error instanceof AppError)) throw error;
    expect(error.reason).toBe("UNAUTHORIZED");
    return error.message;
  }
}

const claims = (extra: Record<string, unknown> = {}) => ({ sub: "alice", iat: NOW_S, exp: NOW_S + 60, ...extra });

describe(TokenVerifier.name, () => {
  describe("HS256 with a secret", () => {
    const verifier = new TokenVerifier(secretConfig({ issuer: "https://issuer.test", audience: ["mplp", "other"] }), { now: at(NOW_S) });
    const good = { iss: "https://issuer.test", aud: "mplp" };

    it.each([
      ["a valid token", signHs256(claims(good)), "ok alice"],
      ["a token for one of several accepted audiences", signHs256(claims({ ...good, aud: ["x", "other"] })), "ok alice"],
      ["a token 20 s past exp (within the 30 s skew)", signHs256(claims({ ...good, exp: NOW_S - 20 })), "ok alice"],
      ["a forged signature (another secret)", signHs256(claims(good), "another-secret-that-is-long-enough-000"), "unauthenticated: the token's signature does not verify"],
      ["a token past exp beyond the skew", signHs256(claims({ ...good, exp: NOW_S - 31 })), "unauthenticated: the token has expired"],
      ["a token not valid yet", signHs256(claims({ ...good, nbf: NOW_S + 120 })), "unauthenticated: the token is not valid yet"],
      ["a wrong issuer", signHs256(claims({ ...good, iss: "https://evil.test" })), "unauthenticated: the token's issuer is not accepted"],
      ["no issuer", signHs256(claims({ aud: "mplp" })), "unauthenticated: the token's issuer is not accepted"],
      ["a wrong audience", signHs256(claims({ ...good, aud: "someone-else" })), "unauthenticated: the token's audience is not accepted"],
      ["a missing sub", signHs256({ ...good, iat: NOW_S, exp: NOW_S + 60 }), "unauthenticated: the token's sub claim is missing or invalid"],
      ["a missing exp", signHs256({ ...good, sub: "alice" }), "unauthenticated: the token's exp claim is missing or invalid"],
      ["a blank sub", signHs256(claims({ ...good, sub: "   " })), "unauthenticated: the token's sub must be 1..255 characters without control characters"],
      ["a sub with a NUL", signHs256(claims({ ...good, sub: "ali\u0000ce" })), "unauthenticated: the token's sub must be 1..255 characters without control characters"],
      ["alg none, unsigned", `${Buffer.from('{"alg":"none"}').toString("base64url")}.${Buffer.from(JSON.stringify(claims(good))).toString("base64url")}.`, "unauthenticated: the token's signing algorithm is not accepted"],
      ["alg HS512 with the right secret", signHs256(claims(good), TEST_JWT_SECRET, { alg: "HS512" }), "unauthenticated: the token's signing algorithm is not accepted"],
      ["garbage", "not.a.jwt", "unauthenticated: the token is malformed"],
      ["an oversized token", "a".repeat(9000), "unauthenticated: the token is malformed"],
    ])("%s → %s", async (_what, token, expected) => {
      expect(await outcome(verifier, token)).toBe(expected);
    });

    it("returns exp plus the skew as the time the token stops being usable", async () => {
      const verified = await verifier.verify(signHs256(claims(good)));
      expect(verified.expiresAt).toBe((NOW_S + 60 + 30) * 1000);
    });
  });

  describe("RS256 and ES256 public keys, and algorithm confusion", () => {
    it("accepts RS256 signed by the private key and refuses an HS256 token keyed with the public PEM", async () => {
      const { publicKey, privateKey } = await generateKeyPair("RS256", { extractable: true });
      const pem = await exportSPKI(publicKey);
      const verifier = new TokenVerifier(
        { keys: { kind: "public-key", key: createPublicKey(pem), algorithm: "RS256" }, issuer: undefined, audience: undefined, clockSkewSeconds: 30 },
        { now: at(NOW_S) },
      );
      const rs = await new SignJWT(claims()).setProtectedHeader({ alg: "RS256" }).sign(privateKey);
      expect(await outcome(verifier, rs)).toBe("ok alice");
      // The classic confusion: the public key, which anyone has, used as an HMAC secret.
      expect(await outcome(verifier, signHs256(claims(), pem))).toBe("unauthenticated: the token's signing algorithm is not accepted");
      const other = await generateKeyPair("RS256");
      const forged = await new SignJWT(claims()).setProtectedHeader({ alg: "RS256" }).sign(other.privateKey);
      expect(await outcome(verifier, forged)).toBe("unauthenticated: the token's signature does not verify");
    });

    it("accepts ES256 signed by the private key", async () => {
      const { publicKey, privateKey } = await generateKeyPair("ES256", { extractable: true });
      const verifier = new TokenVerifier(
        { keys: { kind: "public-key", key: createPublicKey(await exportSPKI(publicKey)), algorithm: "ES256" }, issuer: undefined, audience: undefined, clockSkewSeconds: 30 },
        { now: at(NOW_S) },
      );
      expect(await outcome(verifier, await new SignJWT(claims()).setProtectedHeader({ alg: "ES256" }).sign(privateKey))).toBe("ok alice");
    });
  });

  describe("a local JSON Web Key Set", () => {
    it("picks the key by kid and refuses a kid it does not hold", async () => {
      const a = await generateKeyPair("ES256", { extractable: true });
      const b = await generateKeyPair("RS256", { extractable: true });
      const keys = [
        { ...(await exportJWK(a.publicKey)), kid: "a", alg: "ES256" },
        { ...(await exportJWK(b.publicKey)), kid: "b", alg: "RS256" },
      ];
      const verifier = new TokenVerifier({ keys: { kind: "jwks", jwks: { keys } }, issuer: undefined, audience: undefined, clockSkewSeconds: 30 }, { now: at(NOW_S) });
      expect(await outcome(verifier, await new SignJWT(claims()).setProtectedHeader({ alg: "ES256", kid: "a" }).sign(a.privateKey))).toBe("ok alice");
      expect(await outcome(verifier, await new SignJWT(claims({ sub: "bob" })).setProtectedHeader({ alg: "RS256", kid: "b" }).sign(b.privateKey))).toBe("ok bob");
      expect(await outcome(verifier, await new SignJWT(claims()).setProtectedHeader({ alg: "ES256", kid: "zzz" }).sign(a.privateKey))).toBe(
        "unauthenticated: no key matches the token",
      );
      expect(await outcome(verifier, signHs256(claims(), TEST_JWT_SECRET, { alg: "HS256", kid: "a" }))).toBe("unauthenticated: the token's signing algorithm is not accepted");
    });
  });

  describe("the cache of verified tokens", () => {
    it("remembers a token until it expires, and then refuses it", async () => {
      let now = NOW_S;
      const verifier = new TokenVerifier(secretConfig({ clockSkewSeconds: 0 }), { now: () => now * 1000 });
      const token = signHs256(claims());
      expect(await outcome(verifier, token)).toBe("ok alice");
      expect(verifier.cachedTokens).toBe(1);
      now = NOW_S + 61;
      expect(await outcome(verifier, token)).toBe("unauthenticated: the token has expired");
      expect(verifier.cachedTokens).toBe(0);
    });

    it("holds at most the configured number of tokens", async () => {
      const verifier = new TokenVerifier(secretConfig(), { now: at(NOW_S), cacheEntries: 3 });
      for (const sub of ["a", "b", "c", "d", "e"]) await verifier.verify(signHs256(claims({ sub })));
      expect(verifier.cachedTokens).toBe(3);
    });

    it("never caches a failure", async () => {
      const verifier = new TokenVerifier(secretConfig(), { now: at(NOW_S) });
      await outcome(verifier, signHs256(claims(), "another-secret-that-is-long-enough-000"));
      expect(verifier.cachedTokens).toBe(0);
    });
  });
});
