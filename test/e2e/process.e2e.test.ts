/**
 * The server as a process, as a new user runs it: start-up refuses bad configuration naming the
 * variable, refuses a taken METRICS_PORT naming it (before gRPC ever says it listens), refuses
 * 0.0.0.0 without authentication and serves it with, SIGTERM drains and exits 0, and data on the
 * embedded default survives a restart.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ContextType } from "../../gen/mplp/context/v1/context_pb.js";
import { ContextService } from "../../gen/mplp/context/v1/context_service_pb.js";
import { createClient, errorDetails } from "../../src/transport/grpc-client.js";
import { JWT_ENV, TEST_JWT_SECRET, tokenFor, withToken } from "./support/tokens.js";

const alice = { metadata: { "x-principal-id": "alice" } };

interface Running {
  readonly child: ChildProcess;
  readonly port: number;
  readonly lines: string[];
}

function launch(env: Record<string, string>): ChildProcess {
  return spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
    // A METRICS_PORT of the system's choosing, unless a test names one: test files run in parallel.
    env: { PATH: process.env["PATH"] ?? "", GRPC_PORT: "0", METRICS_PORT: "0", LOG_LEVEL: "info", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
}

/** Starts the server and resolves once it logs that it is serving, with the port it chose. */
async function start(env: Record<string, string>): Promise<Running> {
  const child = launch(env);
  const lines: string[] = [];
  const port = await new Promise<number>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on("line", (line) => {
      lines.push(line);
      const entry = JSON.parse(line) as { msg?: string; address?: string };
      if (entry.msg === "mplp-context serving") resolve(Number(entry.address?.split(":").pop()));
    });
    child.once("exit", (code) => reject(new Error(`server exited with ${code} before serving:\n${lines.join("\n")}`)));
  });
  return { child, port, lines };
}

async function exitOf(child: ChildProcess): Promise<{ code: number | null; stderr: string }> {
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const [code] = (await once(child, "exit")) as [number | null];
  return { code, stderr };
}

describe("the mplp-context process", () => {
  let dataDir: string;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "mplp-process-"));
  });

  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it("refuses to start on a bad variable, naming it", async () => {
    const { code, stderr } = await exitOf(launch({ GRPC_PORT: "fifty" }));
    expect(code).toBe(2);
    expect(stderr).toContain("GRPC_PORT");
  });

  it("refuses a non-loopback address without authentication, saying why", async () => {
    const { code, stderr } = await exitOf(launch({ GRPC_HOST: "0.0.0.0" }));
    expect(code).toBe(2);
    expect(stderr).toContain("ALLOW_UNAUTHENTICATED=true");
  });

  it("refuses to start when METRICS_PORT is taken, naming the setting, without first saying gRPC is listening", { timeout: 60_000 }, async () => {
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, "127.0.0.1", resolve));
    const taken = (holder.address() as AddressInfo).port;
    try {
      const child = launch({ METRICS_PORT: String(taken), PGLITE_DATA_DIR: "memory://" });
      const lines: string[] = [];
      createInterface({ input: child.stdout! }).on("line", (line) => lines.push(line));
      const { code, stderr } = await exitOf(child);
      expect(code).toBe(1);
      expect(stderr).toContain(`METRICS_PORT`);
      expect(stderr).toContain(`127.0.0.1:${taken}`);
      expect(stderr).toContain("set METRICS_PORT to a free port");
      const messages = lines.map((l) => (JSON.parse(l) as { msg: string }).msg);
      expect(messages).toContain("mplp-context failed to start");
      expect(messages).not.toContain("gRPC server listening");
    } finally {
      holder.close();
    }
  });

  // Two process starts on PGlite: seconds each, many more on a loaded machine.
  it("starts on 0.0.0.0 with authentication configured, serving token holders only, and logs no secret", { timeout: 60_000 }, async () => {
    const server = await start({ ...JWT_ENV, GRPC_HOST: "0.0.0.0", PGLITE_DATA_DIR: "memory://" });
    const client = createClient(ContextService, `127.0.0.1:${server.port}`);
    const token = tokenFor("alice");
    try {
      const { context } = await client.createContext({ context: { name: "reachable", type: ContextType.PIPELINE } }, withToken(token));
      expect(context?.accessControl?.owner).toBe("alice");
      const refused = await client.listContexts({}, alice).then(
        () => undefined,
        (error: unknown) => errorDetails(error),
      );
      expect(refused?.reason).toBe("UNAUTHORIZED");
    } finally {
      client.close();
      const exited = once(server.child, "exit");
      server.child.kill("SIGTERM");
      await exited;
    }
    const listening = server.lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((e) => e["msg"] === "gRPC server listening");
    expect(listening).toMatchObject({ authentication: "required", transport: "plaintext" });
    const log = server.lines.join("\n");
    expect(log).not.toContain(TEST_JWT_SECRET);
    expect(log).not.toContain(token);
  });

  it("keeps a context across a graceful restart on the embedded default", { timeout: 120_000 }, async () => {
    const first = await start({ PGLITE_DATA_DIR: dataDir });
    const client = createClient(ContextService, `127.0.0.1:${first.port}`);
    const { context } = await client.createContext({ context: { name: "durable", type: ContextType.PIPELINE } }, alice);
    await client.listContexts({}, alice);
    client.close();

    const exited = once(first.child, "exit");
    first.child.kill("SIGTERM");
    const [code] = (await exited) as [number | null];
    expect(code).toBe(0);
    const messages = first.lines.map((l) => (JSON.parse(l) as { msg: string }).msg);
    expect(messages).toContain("stopped");
    // One log line per call, with what a person needs to find it.
    const call = first.lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((e) => String(e["method"]).endsWith("CreateContext"));
    expect(call).toMatchObject({ code: "OK", principal: "alice" });
    expect(call).toHaveProperty("requestId");
    expect(call).toHaveProperty("durationMs");

    const second = await start({ PGLITE_DATA_DIR: dataDir });
    const again = createClient(ContextService, `127.0.0.1:${second.port}`);
    try {
      const found = await again.getContext({ contextId: context!.contextId }, alice);
      expect(found.context).toMatchObject({ name: "durable", revision: 1n });
    } finally {
      again.close();
      second.child.kill("SIGTERM");
      await once(second.child, "exit");
    }
  });
});
