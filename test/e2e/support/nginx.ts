/**
 * Debian's nginx, run by a test with the shipped deploy/nginx/mplp-context.conf: in a temporary
 * prefix (its own pid, logs and temp files; nothing under /etc or /var is touched), in the
 * foreground (the test owns the process and stops it by its pid), on a free loopback port, with
 * the config's upstream servers replaced by the test's instances. Everything else in the config —
 * least_conn, max_fails, keepalive, limits, timeouts, the UNAVAILABLE fallback — is as shipped.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const NGINX_CONFIG = "deploy/nginx/mplp-context.conf";

/** The nginx binary, or undefined when none is installed. */
export function findNginx(): string | undefined {
  return ["/usr/sbin/nginx", "nginx"].find((candidate) => spawnSync(candidate, ["-v"]).status === 0);
}

export interface RunningNginx {
  readonly port: number;
  /** `127.0.0.1:<port>` */
  readonly address: string;
  /** Its error log so far (failures, upstream errors), for failure messages. */
  errorLog(): Promise<string>;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const port = (server.address() as { port: number }).port;
  server.close();
  await once(server, "close");
  return port;
}

/**
 * The shipped config with its example upstream servers replaced by `upstreams` (each keeping the
 * shipped max_fails / fail_timeout) and its `listen` moved to 127.0.0.1:`port`. Throws when the
 * config no longer has the lines this relies on, so a changed config cannot silently go untested.
 */
export function configFor(shipped: string, upstreams: readonly string[], port: number): string {
  const servers = [...shipped.matchAll(/^(\s*)server\s+\S+(\s+max_fails=\d+\s+fail_timeout=\w+);$/gm)];
  if (servers.length === 0) throw new Error(`${NGINX_CONFIG}: no "server <address> max_fails=… fail_timeout=…;" line in its upstream`);
  const [, indent, parameters] = servers[0]!;
  let replaced = false;
  let config = shipped.replace(/^\s*server\s+\S+\s+max_fails=\d+\s+fail_timeout=\w+;\n/gm, () => {
    if (replaced) return "";
    replaced = true;
    return upstreams.map((u) => `${indent}server ${u}${parameters};\n`).join("");
  });
  const listens = config.match(/^\s*listen\s+\d+\s+http2;$/gm) ?? [];
  if (listens.length !== 1) throw new Error(`${NGINX_CONFIG}: expected one "listen <port> http2;" line, found ${listens.length}`);
  config = config.replace(/^(\s*)listen\s+\d+\s+http2;$/m, `$1listen 127.0.0.1:${port} http2;`);
  return config;
}

async function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => (socket.destroy(), resolve(true)));
    socket.once("error", () => resolve(false));
  });
}

/** Starts nginx in front of `upstreams` (`host:port` each) and resolves once it accepts connections. */
export async function startNginx(binary: string, upstreams: readonly string[]): Promise<RunningNginx> {
  const prefix = await mkdtemp(join(tmpdir(), "mplp-nginx-"));
  const temp = join(prefix, "temp");
  await mkdir(temp);
  // As root, nginx's workers run as `nobody` and must write request bodies here.
  await chmod(temp, 0o777);
  const port = await freePort();
  await writeFile(join(prefix, "mplp-context.conf"), configFor(await readFile(NGINX_CONFIG, "utf8"), upstreams, port));
  const errorLog = join(prefix, "error.log");
  await writeFile(
    join(prefix, "nginx.conf"),
    [
      "daemon off;",
      "worker_processes 1;",
      `pid ${join(prefix, "nginx.pid")};`,
      `error_log ${errorLog} warn;`,
      "events { worker_connections 1024; }",
      "http {",
      `  access_log ${join(prefix, "access.log")};`,
      ...["client_body", "proxy", "fastcgi", "uwsgi", "scgi"].map((t) => `  ${t}_temp_path ${join(temp, t)};`),
      `  include ${join(prefix, "mplp-context.conf")};`,
      "}",
      "",
    ].join("\n"),
  );
  // -e: without it nginx first opens /var/log/nginx/error.log, which a non-root user cannot.
  const child: ChildProcess = spawn(binary, ["-p", prefix, "-c", join(prefix, "nginx.conf"), "-e", errorLog], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = once(child, "exit");
  const deadline = Date.now() + 10_000;
  while (!(await accepts(port))) {
    if (child.exitCode !== null) throw new Error(`nginx exited with ${child.exitCode}: ${stderr}`);
    if (Date.now() > deadline) throw new Error(`nginx did not listen on ${port} within 10 s: ${stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return {
    port,
    address: `127.0.0.1:${port}`,
    errorLog: () => readFile(errorLog, "utf8").catch(() => ""),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        // SIGTERM: nginx's fast shutdown (SIGQUIT would wait for the open watch streams).
        child.kill("SIGTERM");
        await exited;
      }
      await rm(prefix, { recursive: true, force: true });
    },
  };
}
