import { exportJWK, exportSPKI, generateKeyPair } from "jose";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { authenticationConfigured, ConfigError, loadConfig } from "../../src/config.js";
import { makeTestCertificates, type TestCertificates } from "../support/certs.js";

const SECRET = "s".repeat(32);

function problem(env: Record<string, string>): string {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error.message;
    throw error;
  }
  return "accepted";
}

describe("security configuration", () => {
  let certs: TestCertificates;
  let rsaPem: string;
  let jwksFile: string;

  beforeAll(async () => {
    certs = makeTestCertificates();
    rsaPem = await exportSPKI((await generateKeyPair("RS256", { extractable: true })).publicKey);
    const ec = await generateKeyPair("ES256", { extractable: true });
    jwksFile = join(certs.dir, "jwks.json");
    writeFileSync(jwksFile, JSON.stringify({ keys: [{ ...(await exportJWK(ec.publicKey)), kid: "k1" }] }));
  });
  afterAll(() => certs.remove());

  describe("authentication", () => {
    it("is off with none of the AUTH_* variables, and x-principal-id then rules (loopback only)", () => {
      const config = loadConfig({});
      expect(config.jwt).toBeUndefined();
      expect(authenticationConfigured(config)).toBe(false);
    });

    it("reads a secret, a PEM public key (inline or as a path) and a JWKS file", () => {
      expect(loadConfig({ AUTH_JWT_SECRET: SECRET }).jwt?.keys.kind).toBe("secret");
      expect(loadConfig({ AUTH_JWT_PUBLIC_KEY: rsaPem }).jwt?.keys).toMatchObject({ kind: "public-key", algorithm: "RS256" });
      const pemFile = join(certs.dir, "rsa.pem");
      writeFileSync(pemFile, rsaPem);
      expect(loadConfig({ AUTH_JWT_PUBLIC_KEY: pemFile }).jwt?.keys).toMatchObject({ kind: "public-key", algorithm: "RS256" });
      expect(loadConfig({ AUTH_JWKS_FILE: jwksFile }).jwt?.keys.kind).toBe("jwks");
      const jwt = loadConfig({ AUTH_JWT_SECRET: SECRET, AUTH_JWT_ISSUER: "iss", AUTH_JWT_AUDIENCE: "a, b" }).jwt;
      expect(jwt).toMatchObject({ issuer: "iss", audience: ["a", "b"], clockSkewSeconds: 30 });
      expect(loadConfig({ AUTH_JWT_SECRET: SECRET, AUTH_CLOCK_SKEW_SECONDS: "0" }).jwt?.clockSkewSeconds).toBe(0);
    });

    it.each([
      [{ AUTH_JWT_SECRET: "short" }, "AUTH_JWT_SECRET must be at least 32 bytes long"],
      [{ AUTH_JWT_SECRET: SECRET, AUTH_JWKS_FILE: "/x" }, "set exactly one"],
      [{ AUTH_JWT_ISSUER: "iss" }, "AUTH_JWT_ISSUER is set but no key is"],
      [{ AUTH_JWT_PUBLIC_KEY: "-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----" }, "AUTH_JWT_PUBLIC_KEY is not a PEM public key"],
      [{ AUTH_JWT_PUBLIC_KEY: "/no/such/key.pem" }, "AUTH_JWT_PUBLIC_KEY names a file that cannot be read"],
      [{ AUTH_JWKS_FILE: "/no/such/jwks.json" }, "AUTH_JWKS_FILE names a file that cannot be read"],
      [{ AUTH_CLOCK_SKEW_SECONDS: "-1" }, "AUTH_CLOCK_SKEW_SECONDS must be a whole number"],
    ])("refuses %j naming the variable", (env, expected) => {
      expect(problem(env)).toContain(expected);
    });

    it("refuses a JWKS holding symmetric keys", () => {
      const file = join(certs.dir, "oct.json");
      writeFileSync(file, JSON.stringify({ keys: [{ kty: "oct", k: "c2VjcmV0" }] }));
      expect(problem({ AUTH_JWKS_FILE: file })).toContain("AUTH_JWKS_FILE may hold RSA and EC public keys only");
    });
  });

  describe("binding beyond loopback", () => {
    it("refuses 0.0.0.0 without authentication, saying why and how", () => {
      const message = problem({ GRPC_HOST: "0.0.0.0" });
      expect(message).toContain("GRPC_HOST is 0.0.0.0, not a loopback address, and no authentication is configured");
      expect(message).toContain("ALLOW_UNAUTHENTICATED=true");
    });

    it("serves 0.0.0.0 with a JWT key, with mutual TLS, or when told to", () => {
      expect(problem({ GRPC_HOST: "0.0.0.0", AUTH_JWT_SECRET: SECRET })).toBe("accepted");
      expect(
        problem({ GRPC_HOST: "0.0.0.0", TLS_CERT_FILE: certs.files.serverCert, TLS_KEY_FILE: certs.files.serverKey, TLS_CLIENT_CA_FILE: certs.files.caCert }),
      ).toBe("accepted");
      expect(problem({ GRPC_HOST: "0.0.0.0", ALLOW_UNAUTHENTICATED: "true" })).toBe("accepted");
      // TLS alone encrypts but names no one.
      expect(problem({ GRPC_HOST: "0.0.0.0", TLS_CERT_FILE: certs.files.serverCert, TLS_KEY_FILE: certs.files.serverKey })).toContain("ALLOW_UNAUTHENTICATED");
    });
  });

  describe("TLS", () => {
    it("reads the server certificate, key and client CA", () => {
      const tls = loadConfig({ TLS_CERT_FILE: certs.files.serverCert, TLS_KEY_FILE: certs.files.serverKey, TLS_CLIENT_CA_FILE: certs.files.caCert }).tls;
      expect(tls?.cert.toString()).toContain("BEGIN CERTIFICATE");
      expect(tls?.clientCa?.toString()).toContain("BEGIN CERTIFICATE");
    });

    it.each([
      [{ TLS_CERT_FILE: "/x" }, "TLS_KEY_FILE must be set together with TLS_CERT_FILE"],
      [{ TLS_CLIENT_CA_FILE: "/x" }, "TLS_CLIENT_CA_FILE needs TLS_CERT_FILE and TLS_KEY_FILE"],
      [{ TLS_CERT_FILE: "/no/cert.pem", TLS_KEY_FILE: "/no/key.pem" }, "TLS_CERT_FILE names a file that cannot be read"],
    ])("refuses %j naming the variable", (env, expected) => {
      expect(problem(env)).toContain(expected);
    });

    it("refuses a key file that is not a key", () => {
      expect(problem({ TLS_CERT_FILE: certs.files.serverCert, TLS_KEY_FILE: certs.files.serverCert })).toContain("TLS_KEY_FILE is not a PEM private key");
    });
  });

  describe("limits", () => {
    it("has defaults, rate limit off", () => {
      expect(loadConfig({})).toMatchObject({ rateLimitRps: 0, maxConcurrentStreams: 1000, watchMaxPerPrincipal: 100, watchMaxPerStream: 1000 });
    });

    it("defaults the burst to one second's worth", () => {
      expect(loadConfig({ RATE_LIMIT_RPS: "50" })).toMatchObject({ rateLimitRps: 50, rateLimitBurst: 50 });
      expect(loadConfig({ RATE_LIMIT_RPS: "5", RATE_LIMIT_BURST: "20" })).toMatchObject({ rateLimitBurst: 20 });
      expect(problem({ RATE_LIMIT_BURST: "0" })).toContain("RATE_LIMIT_BURST");
      expect(problem({ WATCH_MAX_PER_PRINCIPAL: "0" })).toContain("WATCH_MAX_PER_PRINCIPAL");
      expect(problem({ WATCH_MAX_PER_STREAM: "0" })).toContain("WATCH_MAX_PER_STREAM");
    });
  });
});
