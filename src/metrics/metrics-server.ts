/**
 * The small plain-HTTP server beside gRPC, on METRICS_HOST:METRICS_PORT: `/metrics` (Prometheus
 * text), `/healthz` (the process answers: liveness) and `/readyz` (the database answers and gRPC
 * health is SERVING: readiness). Kept off the gRPC port so scrapers and HTTP-only probes need no
 * HTTP/2 or gRPC, and so a flood of scrapes never competes with calls for the same listener.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "../logger.js";

/** What the server reports on. */
export interface MetricsServerOptions {
  readonly host: string;
  /** 0 picks a free port. */
  readonly port: number;
  readonly logger: Logger;
  /** The exposition text for /metrics. */
  scrape(): Promise<{ contentType: string; body: string }>;
  /** Resolves when ready to take traffic; rejects (or resolves false) when not. */
  ready(): Promise<boolean>;
}

export interface MetricsServer {
  /** The bound port (the real one when asked for 0). */
  readonly port: number;
  close(): Promise<void>;
}

/** How long /readyz waits for the database before answering 503: probes have short timeouts of their own. */
const READY_TIMEOUT_MS = 2_000;

function reply(response: ServerResponse, status: number, body: string, contentType = "text/plain; charset=utf-8"): void {
  response.writeHead(status, { "content-type": contentType, "cache-control": "no-store" });
  response.end(body);
}

async function withTimeout(check: Promise<boolean>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([check.catch(() => false), late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A bind failure a person can act on: which setting holds the address, and what to do about it
 * (the bare `listen EADDRINUSE … 127.0.0.1:9464` names neither). The original stays as `cause`.
 */
export function bindError(error: Error, host: string, port: number): Error {
  const code = (error as NodeJS.ErrnoException).code;
  const where = `METRICS_HOST:METRICS_PORT ${host}:${port} (the /metrics, /healthz and /readyz server)`;
  if (code === "EADDRINUSE") {
    return new Error(`${where} is already in use, perhaps by another mplp-context: stop what holds it, or set METRICS_PORT to a free port (0 picks one)`, { cause: error });
  }
  if (code === "EACCES") return new Error(`${where} may not be bound by this user: set METRICS_PORT above 1023`, { cause: error });
  if (code === "EADDRNOTAVAIL") return new Error(`${where}: no interface of this machine has that address: set METRICS_HOST to one it has (e.g. 127.0.0.1)`, { cause: error });
  return new Error(`${where} could not be bound: ${error.message}`, { cause: error });
}

/** Binds and resolves once listening; rejects (EADDRINUSE, EACCES) so start-up fails loudly. */
export async function startMetricsServer(options: MetricsServerOptions): Promise<MetricsServer> {
  const handle = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    if (request.method !== "GET" && request.method !== "HEAD") return reply(response, 405, "method not allowed\n");
    const path = (request.url ?? "/").split("?", 1)[0];
    switch (path) {
      case "/metrics": {
        const { contentType, body } = await options.scrape();
        return reply(response, 200, body, contentType);
      }
      case "/healthz":
        return reply(response, 200, "ok\n");
      case "/readyz":
        return (await withTimeout(options.ready(), READY_TIMEOUT_MS)) ? reply(response, 200, "ready\n") : reply(response, 503, "not ready\n");
      default:
        return reply(response, 404, "not found: try /metrics, /healthz or /readyz\n");
    }
  };
  const server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      options.logger.warn({ err: error, url: request.url }, "metrics endpoint failed");
      if (!response.headersSent) reply(response, 500, "internal error\n");
      else response.destroy();
    });
  });
  // Scrapers keep connections alive; they must not hold shutdown up.
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    const failed = (error: Error): void => reject(bindError(error, options.host, options.port));
    server.once("error", failed);
    server.listen(options.port, options.host, () => {
      server.off("error", failed);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  options.logger.info({ address: `${options.host}:${port}` }, "metrics listening");
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
