/**
 * Who is calling: the one place a call's principal is decided (shared/API.md, "Auth").
 *
 * - With a JWT key configured, `authorization: Bearer <JWT>` names the principal (its `sub`); a
 *   missing, malformed, forged or expired token is UNAUTHENTICATED / UNAUTHORIZED.
 * - With mutual TLS (TLS_CLIENT_CA_FILE), a call without a token is the client certificate's
 *   subject CN (the TLS handshake already proved the client holds the certificate's key).
 * - With either, `x-principal-id` is ignored: a header anyone can set names no one.
 * - With neither, `x-principal-id` names the principal (default `anonymous`); config.ts allows
 *   this on loopback only unless ALLOW_UNAUTHENTICATED=true.
 *
 * Health and reflection are separate grpc-js services that never reach this: they stay open.
 */
import type * as grpc from "@grpc/grpc-js";
import type { PeerCertificate } from "node:tls";
import { authenticationConfigured, type Config } from "../config.js";
import { AppError } from "../domain/app-error.js";
import { LIMITS } from "../domain/limits.js";
import { TokenVerifier, unauthenticated } from "./auth-jwt.js";

/** Metadata key naming the caller when no authentication is configured. */
export const PRINCIPAL_HEADER = "x-principal-id";
/** Metadata key of the bearer token. */
export const AUTHORIZATION_HEADER = "authorization";
/** The principal of an unauthenticated call that names none. */
export const ANONYMOUS = "anonymous";

const CONTROL = /[\u0000-\u001f\u007f]/;
const BEARER = /^Bearer +(\S+) *$/i;

/** How a call's principal was established. */
export type IdentitySource = "token" | "certificate" | "header";

/** The caller, as proved (or, without authentication, as claimed). */
export interface Identity {
  readonly principal: string;
  readonly source: IdentitySource;
  /** When the proof stops being valid (epoch ms): a token's exp plus the clock skew. */
  readonly expiresAt?: number;
}

/** What the authenticator reads from a call. */
export interface Credentials {
  readonly metadata: grpc.Metadata;
  /** The client certificate of a mutual-TLS connection; undefined otherwise. */
  readonly peerCertificate: PeerCertificate | undefined;
}

/** Decides the principal of each call. */
export interface Authenticator {
  /** True when callers must prove who they are (x-principal-id is then ignored). */
  readonly required: boolean;
  authenticate(credentials: Credentials): Promise<Identity>;
}

function firstText(metadata: grpc.Metadata, key: string): string | undefined {
  const [value] = metadata.get(key);
  return typeof value === "string" ? value : undefined;
}

/** A claimed or certified principal is plain text of bounded length: anything else is refused. */
function usablePrincipal(raw: string): boolean {
  const length = [...raw].length;
  return length > 0 && length <= LIMITS.principalChars && !CONTROL.test(raw) && raw.trim() !== "";
}

/** The subject CN of a client certificate (the first, when several). */
export function certificateCommonName(certificate: PeerCertificate | undefined): string | undefined {
  const cn = certificate?.subject?.CN as string | string[] | undefined;
  return Array.isArray(cn) ? cn[0] : cn;
}

/** Without authentication: the `x-principal-id` header, checked for shape only. */
class HeaderAuthenticator implements Authenticator {
  readonly required = false;

  async authenticate({ metadata }: Credentials): Promise<Identity> {
    const raw = firstText(metadata, PRINCIPAL_HEADER);
    if (raw === undefined) return { principal: ANONYMOUS, source: "header" };
    if (!usablePrincipal(raw)) {
      throw AppError.validation([
        { field: PRINCIPAL_HEADER, description: `must be 1..${LIMITS.principalChars} characters without control characters` },
      ]);
    }
    return { principal: raw, source: "header" };
  }
}

/** With a JWT key and/or mutual TLS: a bearer token first, then the client certificate. */
class VerifyingAuthenticator implements Authenticator {
  readonly required = true;

  constructor(
    private readonly tokens: TokenVerifier | undefined,
    private readonly certificates: boolean,
  ) {}

  async authenticate({ metadata, peerCertificate }: Credentials): Promise<Identity> {
    const header = firstText(metadata, AUTHORIZATION_HEADER);
    if (header !== undefined) {
      if (this.tokens === undefined) throw unauthenticated("bearer tokens are not accepted here: authenticate with a client certificate");
      const token = BEARER.exec(header)?.[1];
      if (token === undefined) throw unauthenticated('the authorization metadata must be "Bearer <JWT>"');
      const verified = await this.tokens.verify(token);
      return { principal: verified.principal, source: "token", expiresAt: verified.expiresAt };
    }
    if (this.certificates) {
      const cn = certificateCommonName(peerCertificate);
      if (cn !== undefined && usablePrincipal(cn)) return { principal: cn, source: "certificate" };
      throw unauthenticated("no bearer token, and the client certificate names no usable subject CN");
    }
    throw unauthenticated('missing "authorization: Bearer <JWT>" metadata');
  }
}

/** The authenticator the configuration asks for. */
export function createAuthenticator(config: Pick<Config, "jwt" | "tls">): Authenticator {
  if (!authenticationConfigured(config)) return new HeaderAuthenticator();
  return new VerifyingAuthenticator(config.jwt === undefined ? undefined : new TokenVerifier(config.jwt), config.tls?.clientCa !== undefined);
}
