/**
 * Throwaway certificates for the TLS suites, made with the machine's `openssl` in a temp dir and
 * removed afterwards (never committed): a CA, a server certificate for localhost / 127.0.0.1 signed
 * by it, a client certificate (CN alice) signed by it, and a client certificate from a rogue CA.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface TestCertificates {
  readonly dir: string;
  /** Paths, as TLS_* variables take them. */
  readonly files: { readonly caCert: string; readonly serverCert: string; readonly serverKey: string };
  /** PEM contents, as grpc-js client credentials take them. */
  readonly ca: Buffer;
  readonly client: { readonly cert: Buffer; readonly key: Buffer };
  /** A client certificate the test CA never signed. */
  readonly rogueClient: { readonly cert: Buffer; readonly key: Buffer };
  remove(): void;
}

function openssl(dir: string, ...args: string[]): void {
  execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
}

const EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

function makeCa(dir: string, name: string): void {
  openssl(dir, "req", "-x509", ...EC, "-keyout", `${name}.key`, "-out", `${name}.pem`, "-days", "2", "-subj", `/CN=${name}`);
}

function makeLeaf(dir: string, name: string, ca: string, subject: string, extensions: string): void {
  writeFileSync(join(dir, `${name}.ext`), extensions);
  openssl(dir, "req", "-new", ...EC, "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", subject);
  openssl(dir, "x509", "-req", "-in", `${name}.csr`, "-CA", `${ca}.pem`, "-CAkey", `${ca}.key`, "-CAcreateserial", "-out", `${name}.pem`, "-days", "2", "-extfile", `${name}.ext`);
}

/** Makes the whole set in a fresh temp dir (about a second). */
export function makeTestCertificates(): TestCertificates {
  const dir = mkdtempSync(join(tmpdir(), "mplp-certs-"));
  makeCa(dir, "test-ca");
  makeCa(dir, "rogue-ca");
  makeLeaf(dir, "server", "test-ca", "/CN=localhost", "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n");
  makeLeaf(dir, "alice", "test-ca", "/CN=alice", "extendedKeyUsage=clientAuth\n");
  makeLeaf(dir, "mallory", "rogue-ca", "/CN=mallory", "extendedKeyUsage=clientAuth\n");
  const read = (file: string): Buffer => readFileSync(join(dir, file));
  return {
    dir,
    files: { caCert: join(dir, "test-ca.pem"), serverCert: join(dir, "server.pem"), serverKey: join(dir, "server.key") },
    ca: read("test-ca.pem"),
    client: { cert: read("alice.pem"), key: read("alice.key") },
    rogueClient: { cert: read("mallory.pem"), key: read("mallory.key") },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
