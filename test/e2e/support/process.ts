/**
 * The server as a separate process (`node --import tsx src/main.ts`), as several instances run in
 * production: start it with an environment, wait until it serves, and stop it.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";

export interface ServerProcess {
  readonly child: ChildProcess;
  readonly port: number;
  /** `127.0.0.1:<port>` */
  readonly address: string;
  /** Its log lines (stdout) and stderr so far, for failure messages. */
  readonly lines: string[];
  stderr(): string;
  /** SIGTERM (or `signal`) and wait for the exit; resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Starts the server and resolves once it logs that it is serving, with the port it chose. */
export async function startServerProcess(env: Readonly<Record<string, string>>): Promise<ServerProcess> {
  const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
    // Ports the system picks: test files run in parallel, and a fixed METRICS_PORT (9464 by default)
    // held by one file's server made another's fail to start.
    env: { PATH: process.env["PATH"] ?? "", GRPC_PORT: "0", METRICS_PORT: "0", LOG_LEVEL: "info", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines: string[] = [];
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = once(child, "exit") as Promise<[number | null, NodeJS.Signals | null]>;
  const port = await new Promise<number>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on("line", (line) => {
      lines.push(line);
      try {
        const entry = JSON.parse(line) as { msg?: string; address?: string };
        if (entry.msg === "mplp-context serving") resolve(Number(entry.address?.split(":").pop()));
      } catch {
        // not a log line
      }
    });
    void exited.then(([code]) => reject(new Error(`server exited with ${code} before serving:\n${lines.join("\n")}\n${stderr}`)));
  });
  return {
    child,
    port,
    address: `127.0.0.1:${port}`,
    lines,
    stderr: () => stderr,
    async stop(signal: NodeJS.Signals = "SIGTERM") {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill(signal);
      const [code] = await exited;
      return code;
    },
  };
}
