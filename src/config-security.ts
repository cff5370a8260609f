/**
 * The security part of the configuration: how callers prove who they are (JWT keys, issuer,
 * audience, clock skew), TLS and mutual TLS, and the per-principal limits. Key and certificate
 * files are read here, once, so a missing or unreadable file stops start-up naming its variable
 * instead of failing on the first call.
 */
import { createPublicKey, type KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";

/** How bearer tokens are verified; exactly one key source is configured. */
export type JwtKeySource =
  /** HS256 with a shared secret (AUTH_JWT_SECRET). */
  | { readonly kind: "secret"; readonly secret: Uint8Array }
  /** RS256 or ES256 with one public key (AUTH_JWT_PUBLIC_KEY); the algorithm follows the key type. */
  | { readonly kind: "public-key"; readonly key: KeyObject; readonly algorithm: "RS256" | "ES256" }
  /** RS256 / ES256 keys picked by `kid` from a local JSON Web Key Set (AUTH_JWKS_FILE). */
  | { readonly kind: "jwks"; readonly jwks: { readonly keys: ReadonlyArray<Record<string, unknown>> } };

/** JWT authentication settings; undefined in Config when no AUTH_* key variable is set. */
export interface JwtConfig {
  readonly keys: JwtKeySource;
  /** Required `iss`, when set. */
  readonly issuer: string | undefined;
  /** Accepted `aud` values (the token must name one), when set. */
  readonly audience: readonly string[] | undefined;
  /** Leeway for `exp` and `nbf`, in seconds: clocks of issuer and server never agree exactly. */
  readonly clockSkewSeconds: number;
}

/** TLS settings; undefined in Config when TLS_CERT_FILE is unset (plaintext). */
export interface TlsConfig {
  /** PEM certificate chain of the server. */
  readonly cert: Buffer;
  /** PEM private key of the server. */
  readonly key: Buffer;
  /** PEM CA bundle client certificates must chain to; set → mutual TLS, a client certificate is required. */
  readonly clientCa: Buffer | undefined;
}

/** Thrown for a bad security variable; config.ts turns it into its ConfigError. */
export class SecurityConfigError extends Error {
  constructor(
    readonly variable: string,
    readonly problem: string,
  ) {
    super(`${variable} ${problem}`);
    this.name = "SecurityConfigError";
  }
}

type Env = Readonly<Record<string, string | undefined>>;

function set(env: Env, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value.trim() === "" ? undefined : value;
}

function readFile(name: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    const code = (error as { code?: string }).code ?? "unreadable";
    throw new SecurityConfigError(name, `names a file that cannot be read (${code}): ${path}`);
  }
}

/** HS256 secrets shorter than the hash (32 bytes) can be brute-forced offline from any token. */
const MIN_SECRET_BYTES = 32;

function publicKey(raw: string): JwtKeySource {
  // The variable holds the PEM itself or, more convenient for files mounted as secrets, its path.
  const pem = raw.includes("-----BEGIN") ? raw : readFile("AUTH_JWT_PUBLIC_KEY", raw).toString("utf8");
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch {
    throw new SecurityConfigError("AUTH_JWT_PUBLIC_KEY", "is not a PEM public key (SPKI or certificate)");
  }
  if (key.asymmetricKeyType === "rsa") return { kind: "public-key", key, algorithm: "RS256" };
  if (key.asymmetricKeyType === "ec" && key.asymmetricKeyDetails?.namedCurve === "prime256v1") {
    return { kind: "public-key", key, algorithm: "ES256" };
  }
  throw new SecurityConfigError("AUTH_JWT_PUBLIC_KEY", "must be an RSA key (RS256) or a P-256 EC key (ES256)");
}

function jwksFile(path: string): JwtKeySource {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFile("AUTH_JWKS_FILE", path).toString("utf8"));
  } catch (error) {
    if (error instanceof SecurityConfigError) throw error;
    throw new SecurityConfigError("AUTH_JWKS_FILE", "is not valid JSON");
  }
  const keys = (parsed as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys) || keys.length === 0 || !keys.every((k) => typeof k === "object" && k !== null)) {
    throw new SecurityConfigError("AUTH_JWKS_FILE", 'must hold a JSON Web Key Set: {"keys": [ … ]} with at least one key');
  }
  // Symmetric keys in a key set would let anyone holding the set forge tokens.
  if (keys.some((k: Record<string, unknown>) => k["kty"] !== "RSA" && k["kty"] !== "EC")) {
    throw new SecurityConfigError("AUTH_JWKS_FILE", "may hold RSA and EC public keys only");
  }
  return { kind: "jwks", jwks: { keys: keys as Array<Record<string, unknown>> } };
}

/** Reads the AUTH_* variables; undefined when no key source is set (authentication off). */
export function jwtConfig(env: Env, clockSkewSeconds: number): JwtConfig | undefined {
  const secret = set(env, "AUTH_JWT_SECRET");
  const pem = set(env, "AUTH_JWT_PUBLIC_KEY");
  const jwks = set(env, "AUTH_JWKS_FILE");
  const sources = [secret, pem, jwks].filter((s) => s !== undefined).length;
  const issuer = set(env, "AUTH_JWT_ISSUER");
  const audience = set(env, "AUTH_JWT_AUDIENCE");
  if (sources === 0) {
    if (issuer !== undefined || audience !== undefined) {
      throw new SecurityConfigError(
        issuer !== undefined ? "AUTH_JWT_ISSUER" : "AUTH_JWT_AUDIENCE",
        "is set but no key is: set AUTH_JWT_SECRET, AUTH_JWT_PUBLIC_KEY or AUTH_JWKS_FILE",
      );
    }
    return undefined;
  }
  if (sources > 1) {
    throw new SecurityConfigError("AUTH_JWT_SECRET", "AUTH_JWT_PUBLIC_KEY and AUTH_JWKS_FILE are alternatives: set exactly one");
  }
  let keys: JwtKeySource;
  if (secret !== undefined) {
    const bytes = new TextEncoder().encode(secret);
    if (bytes.length < MIN_SECRET_BYTES) throw new SecurityConfigError("AUTH_JWT_SECRET", `must be at least ${MIN_SECRET_BYTES} bytes long`);
    keys = { kind: "secret", secret: bytes };
  } else if (pem !== undefined) {
    keys = publicKey(pem);
  } else {
    keys = jwksFile(jwks!);
  }
  return {
    keys,
    issuer,
    audience: audience
      ?.split(",")
      .map((a) => a.trim())
      .filter((a) => a !== ""),
    clockSkewSeconds,
  };
}

/** Reads TLS_CERT_FILE, TLS_KEY_FILE and TLS_CLIENT_CA_FILE; undefined when TLS is off. */
export function tlsConfig(env: Env): TlsConfig | undefined {
  const certFile = set(env, "TLS_CERT_FILE");
  const keyFile = set(env, "TLS_KEY_FILE");
  const caFile = set(env, "TLS_CLIENT_CA_FILE");
  if (certFile === undefined && keyFile === undefined) {
    if (caFile !== undefined) throw new SecurityConfigError("TLS_CLIENT_CA_FILE", "needs TLS_CERT_FILE and TLS_KEY_FILE (mutual TLS is TLS first)");
    return undefined;
  }
  if (certFile === undefined) throw new SecurityConfigError("TLS_CERT_FILE", "must be set together with TLS_KEY_FILE");
  if (keyFile === undefined) throw new SecurityConfigError("TLS_KEY_FILE", "must be set together with TLS_CERT_FILE");
  const cert = readFile("TLS_CERT_FILE", certFile);
  const key = readFile("TLS_KEY_FILE", keyFile);
  if (!cert.toString("utf8").includes("-----BEGIN CERTIFICATE")) throw new SecurityConfigError("TLS_CERT_FILE", "is not a PEM certificate");
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY/.test(key.toString("utf8"))) throw new SecurityConfigError("TLS_KEY_FILE", "is not a PEM private key");
  const clientCa = caFile === undefined ? undefined : readFile("TLS_CLIENT_CA_FILE", caFile);
  if (clientCa !== undefined && !clientCa.toString("utf8").includes("-----BEGIN CERTIFICATE")) {
    throw new SecurityConfigError("TLS_CLIENT_CA_FILE", "is not a PEM certificate bundle");
  }
  return { cert, key, clientCa };
}
