/**
 * The server's transport credentials: plaintext, TLS (TLS_CERT_FILE / TLS_KEY_FILE), or mutual TLS
 * (TLS_CLIENT_CA_FILE as well). With mutual TLS grpc-js requires and checks a client certificate
 * during the handshake, so a client without one the CA signed never gets to make a call; the
 * certificate's subject CN may then serve as the caller's principal (auth.ts).
 */
import * as grpc from "@grpc/grpc-js";
import type { TlsConfig } from "../config.js";

/** The ServerCredentials for `tls` (undefined → plaintext). */
export function serverCredentials(tls: TlsConfig | undefined): grpc.ServerCredentials {
  if (tls === undefined) return grpc.ServerCredentials.createInsecure();
  const keyCertPairs = [{ private_key: tls.key, cert_chain: tls.cert }];
  if (tls.clientCa === undefined) return grpc.ServerCredentials.createSsl(null, keyCertPairs, false);
  // checkClientCertificate = true: the handshake fails for a client without a certificate the CA signed.
  return grpc.ServerCredentials.createSsl(tls.clientCa, keyCertPairs, true);
}

/** What the listening log line says about the transport (never key material). */
export function transportSecurity(tls: TlsConfig | undefined): "plaintext" | "tls" | "mtls" {
  if (tls === undefined) return "plaintext";
  return tls.clientCa === undefined ? "tls" : "mtls";
}
