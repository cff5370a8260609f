/**
 * TLS and mutual TLS over the wire, with throwaway certificates made by openssl for this run:
 * a TLS client that trusts the CA is served, a plaintext one is not; with TLS_CLIENT_CA_FILE a
 * client presenting a certificate the CA signed is served as its CN (x-principal-id ignored), and
 * clients without one, or with one from another CA, are refused at the handshake.
 */
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ContextType } from "../../gen/mplp/context/v1/context_pb.js";
import { ContextService } from "../../gen/mplp/context/v1/context_service_pb.js";
import type { App } from "../../src/app.js";
import { createClient } from "../../src/transport/grpc-client.js";
import { makeTestCertificates, type TestCertificates } from "../support/certs.js";
import { startTestApp } from "./support/app.js";
import { failure } from "./support/failure.js";
import { healthStatus } from "./support/open-services.js";
import { tokenFor, withToken, JWT_ENV } from "./support/tokens.js";

let certs: TestCertificates;
beforeAll(() => {
  certs = makeTestCertificates();
});
afterAll(() => certs?.remove());

/** The server certificate's name (SNI must not be an IP address). */
const NAMED = { "grpc.ssl_target_name_override": "localhost" };
/** Fails fast instead of retrying a handshake that cannot succeed. */
const deadline = () => Date.now() + 5_000;

describe("TLS (PGlite)", () => {
  let app: App;
  beforeAll(async () => {
    app = await startTestApp({ PGLITE_DATA_DIR: "memory://", TLS_CERT_FILE: certs.files.serverCert, TLS_KEY_FILE: certs.files.serverKey });
  });
  afterAll(async () => app?.stop());

  it("serves a client that trusts the CA, health included", async () => {
    const address = `127.0.0.1:${app.port}`;
    const client = createClient(ContextService, address, grpc.credentials.createSsl(certs.ca), NAMED);
    try {
      const { context } = await client.createContext({ context: { name: "over-tls", type: ContextType.PIPELINE } }, { metadata: { "x-principal-id": "carol" }, deadline: deadline() });
      expect(context?.accessControl?.owner).toBe("carol");
      expect(await healthStatus(address, grpc.credentials.createSsl(certs.ca), NAMED)).toBe("SERVING");
    } finally {
      client.close();
    }
  });

  it("refuses a plaintext client and one that does not trust the CA", async () => {
    for (const credentials of [grpc.credentials.createInsecure(), grpc.credentials.createSsl(certs.rogueClient.cert)]) {
      const client = createClient(ContextService, `127.0.0.1:${app.port}`, credentials, NAMED);
      try {
        const refused = await failure(client.listContexts({}, { deadline: deadline() }));
        expect([grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED]).toContain(refused.code);
      } finally {
        client.close();
      }
    }
  });
});

describe("mutual TLS (PGlite)", () => {
  let app: App;
  beforeAll(async () => {
    app = await startTestApp({
      ...JWT_ENV,
      PGLITE_DATA_DIR: "memory://",
      TLS_CERT_FILE: certs.files.serverCert,
      TLS_KEY_FILE: certs.files.serverKey,
      TLS_CLIENT_CA_FILE: certs.files.caCert,
    });
  });
  afterAll(async () => app?.stop());

  const client = (credentials: grpc.ChannelCredentials) => createClient(ContextService, `127.0.0.1:${app.port}`, credentials, NAMED);

  it("serves a client whose certificate the CA signed, as its subject CN, ignoring x-principal-id", async () => {
    const alice = client(grpc.credentials.createSsl(certs.ca, certs.client.key, certs.client.cert));
    try {
      const { context } = await alice.createContext({ context: { name: "by-cert", type: ContextType.PIPELINE } }, { metadata: { "x-principal-id": "bob" }, deadline: deadline() });
      expect(context?.accessControl?.owner).toBe("alice");
      // A token, when sent, names the principal instead.
      const { context: other } = await alice.createContext({ context: { name: "by-token", type: ContextType.PIPELINE } }, { ...withToken(tokenFor("dora")), deadline: deadline() });
      expect(other?.accessControl?.owner).toBe("dora");
    } finally {
      alice.close();
    }
  });

  it("refuses a client without a certificate, and one whose certificate another CA signed", async () => {
    const cases = [grpc.credentials.createSsl(certs.ca), grpc.credentials.createSsl(certs.ca, certs.rogueClient.key, certs.rogueClient.cert)];
    for (const credentials of cases) {
      const c = client(credentials);
      try {
        const refused = await failure(c.listContexts({}, { ...withToken(tokenFor("alice")), deadline: deadline() }));
        expect([grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED]).toContain(refused.code);
      } finally {
        c.close();
      }
    }
  });
});
