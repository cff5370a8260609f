import * as grpc from "@grpc/grpc-js";
import type { PeerCertificate } from "node:tls";
import { describe, expect, it } from "vitest";
import type { JwtConfig, TlsConfig } from "../../../src/config.js";
import { AppError } from "../../../src/domain/app-error.js";
import { certificateCommonName, createAuthenticator, type Credentials } from "../../../src/transport/auth.js";
import { tokenFor, TEST_JWT_SECRET } from "../../e2e/support/tokens.js";

const jwt: JwtConfig = {
  keys: { kind: "secret", secret: new TextEncoder().encode(TEST_JWT_SECRET) },
  issuer: undefined,
  audience: undefined,
  clockSkewSeconds: 30,
};
const mtls: TlsConfig = { cert: Buffer.from(""), key: Buffer.from(""), clientCa: Buffer.from("ca") };

function credentials(headers: Record<string, string>, cn?: string | string[]): Credentials {
  const metadata = new grpc.Metadata();
  for (const [k, v] of Object.entries(headers)) metadata.set(k, v);
  return { metadata, peerCertificate: cn === undefined ? undefined : ({ subject: { CN: cn } } as unknown as PeerCertificate) };
}

async function outcome(promise: Promise<{ principal: string; source: string }>): Promise<string> {
  try {
    const identity = await promise;
    return `${identity.principal} (${identity.source})`;
  } catch (error) {
    if (!(error instanceof AppError)) throw error;
    return `${error.reason}: ${error.message}`;
  }
}

describe("createAuthenticator", () => {
  describe("without authentication", () => {
    const auth = createAuthenticator({ jwt: undefined, tls: undefined });

    it("takes x-principal-id, defaulting to anonymous, and ignores any token", async () => {
      expect(auth.required).toBe(false);
      expect(await outcome(auth.authenticate(credentials({ "x-principal-id": "bob" })))).toBe("bob (header)");
      expect(await outcome(auth.authenticate(credentials({})))).toBe("anonymous (header)");
      expect(await outcome(auth.authenticate(credentials({ authorization: "Bearer junk", "x-principal-id": "bob" })))).toBe("bob (header)");
    });

    it("refuses a malformed x-principal-id as VALIDATION_ERROR", async () => {
      expect(await outcome(auth.authenticate(credentials({ "x-principal-id": "x".repeat(256) })))).toMatch(/^VALIDATION_ERROR/);
      expect(await outcome(auth.authenticate(credentials({ "x-principal-id": "  " })))).toMatch(/^VALIDATION_ERROR/);
    });
  });

  describe("with a JWT key", () => {
    const auth = createAuthenticator({ jwt, tls: undefined });

    it("takes the token's sub and ignores x-principal-id", async () => {
      expect(auth.required).toBe(true);
      expect(await outcome(auth.authenticate(credentials({ authorization: `Bearer ${tokenFor("alice")}`, "x-principal-id": "bob" })))).toBe(
        "alice (token)",
      );
      expect(await outcome(auth.authenticate(credentials({ authorization: `bearer   ${tokenFor("alice")}` })))).toBe("alice (token)");
    });

    it.each([
      [{}, 'UNAUTHORIZED: unauthenticated: missing "authorization: Bearer <JWT>" metadata'],
      [{ "x-principal-id": "alice" }, 'UNAUTHORIZED: unauthenticated: missing "authorization: Bearer <JWT>" metadata'],
      [{ authorization: "Basic YWxpY2U6cHc=" }, 'UNAUTHORIZED: unauthenticated: the authorization metadata must be "Bearer <JWT>"'],
      [{ authorization: "Bearer" }, 'UNAUTHORIZED: unauthenticated: the authorization metadata must be "Bearer <JWT>"'],
      [{ authorization: "Bearer a.b.c" }, "UNAUTHORIZED: unauthenticated: the token is malformed"],
    ])("refuses %j", async (headers, expected) => {
      expect(await outcome(auth.authenticate(credentials(headers)))).toBe(expected);
    });

    it("does not take a certificate's CN without mutual TLS configured", async () => {
      expect(await outcome(auth.authenticate(credentials({}, "alice")))).toMatch(/^UNAUTHORIZED/);
    });
  });

  describe("with mutual TLS", () => {
    it("takes the client certificate's CN when no token is sent, the token's sub when one is", async () => {
      const auth = createAuthenticator({ jwt, tls: mtls });
      expect(await outcome(auth.authenticate(credentials({ "x-principal-id": "bob" }, "agent-7")))).toBe("agent-7 (certificate)");
      expect(await outcome(auth.authenticate(credentials({ authorization: `Bearer ${tokenFor("alice")}` }, "agent-7")))).toBe("alice (token)");
      expect(await outcome(auth.authenticate(credentials({}, "")))).toMatch(/^UNAUTHORIZED/);
    });

    it("refuses bearer tokens when only certificates are configured", async () => {
      const auth = createAuthenticator({ jwt: undefined, tls: mtls });
      expect(auth.required).toBe(true);
      expect(await outcome(auth.authenticate(credentials({ authorization: `Bearer ${tokenFor("alice")}` }, "agent-7")))).toMatch(/^UNAUTHORIZED/);
      expect(await outcome(auth.authenticate(credentials({}, ["first", "second"])))).toBe("first (certificate)");
    });
  });

  it("reads the CN of a certificate, or nothing", () => {
    expect(certificateCommonName(undefined)).toBeUndefined();
    expect(certificateCommonName({ subject: { CN: "x" } } as unknown as PeerCertificate)).toBe("x");
  });
});
