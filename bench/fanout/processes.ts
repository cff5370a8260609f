/**
 * Server processes for the benchmark — ours (built, `dist/src/main.js`, as `npm start` and the
 * container run it) and the bare grpc-js baseline — started with an environment, awaited until they
 * log that they serve, measured through /proc (RSS, CPU time), and stopped.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { createWriteStream, readFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

/** The repository root: servers start from it, as `npm start` does. */
export const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));

let built = false;

/**
 * Our server's entry point as users run it: the build of the code as it is now (`npm run build`,
 * once per benchmark run). Measured from src/ through tsx, every closure paid for a name helper
 * esbuild adds (about 1 % of a call's CPU) that the built server does not have.
 */
export function builtServerEntry(): string {
  if (!built) {
    execFileSync("npm", ["run", "--silent", "build"], { cwd: REPO_ROOT, stdio: ["ignore", "ignore", "inherit"] });
    built = true;
  }
  return "dist/src/main.js";
}

/** What the bare baseline (bare-server.ts) logs once it listens, as `{"msg": …, "port": N}`. */
export const BARE_READY_MESSAGE = "bare grpc-js serving";
/** What our server logs once it serves (src/app.ts). */
export const SERVER_READY_MESSAGE = "mplp-context serving";

/**
 * Every child still running. A last-resort kill on exit: a server still starting when the run is
 * abandoned is not registered for cleanup yet, and must not outlive the benchmark.
 */
const children = new Set<ChildProcess>();
process.on("exit", () => {
  for (const child of children) child.kill("SIGKILL");
});

/** Lines of log kept per process, for the error message when it dies. */
const KEPT_LINES = 50;

export interface ServerProcess {
  readonly label: string;
  readonly pid: number;
  readonly port: number;
  readonly address: string;
  /** `host:port` of its /metrics, when its ready line names one (our server does). */
  readonly metricsAddress?: string;
  /** SIGTERM, then SIGKILL when it has not exited within the grace period; idempotent. */
  stop(): Promise<void>;
}

/**
 * Spawns `args` with `node --import tsx` and resolves once a stdout JSON line has `msg` equal to
 * `readyMessage`, with the port from its `address` (`host:port`) or `port` field. Stdout is read to
 * the end (a full pipe would block the server), keeping the last lines.
 */
export async function startProcess(label: string, args: readonly string[], env: Readonly<Record<string, string>>, readyMessage: string): Promise<ServerProcess> {
  const child = spawn(process.execPath, [...serverNodeArgs(), "--import", "tsx", ...args], {
    cwd: REPO_ROOT,
    env: { PATH: process.env["PATH"] ?? "", HOME: process.env["HOME"] ?? "", GRPC_PORT: "0", ...env, ...serverEnv() },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.add(child);
  child.once("exit", () => children.delete(child));
  const lines: string[] = [];
  // BENCH_SERVER_LOG_DIR: every line of the process's output also goes to <dir>/<label>-<pid>.log.
  const logDir = process.env["BENCH_SERVER_LOG_DIR"];
  const logFile = logDir === undefined || logDir === "" ? undefined : createWriteStream(join(logDir, `${label}-${child.pid}.log`));
  const keep = (line: string): void => {
    logFile?.write(`${line}\n`);
    lines.push(line);
    if (lines.length > KEPT_LINES) lines.shift();
  };
  child.once("exit", () => logFile?.end());
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => chunk.split("\n").forEach(keep));
  const exited = once(child, "exit") as Promise<[number | null, NodeJS.Signals | null]>;
  let metricsAddress: string | undefined;
  const port = await new Promise<number>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on("line", (line) => {
      keep(line);
      if (!line.includes(readyMessage)) return;
      try {
        const entry = JSON.parse(line) as { msg?: string; address?: string; port?: number; metrics?: string };
        if (entry.msg !== readyMessage) return;
        metricsAddress = entry.metrics;
        resolve(entry.port ?? Number(entry.address?.split(":").pop()));
      } catch {
        // not a JSON log line
      }
    });
    void exited.then(([code, signal]) => reject(new Error(`${label} exited (${code ?? signal}) before serving:\n${lines.join("\n")}`)));
  });
  return {
    label,
    pid: child.pid!,
    port,
    address: `127.0.0.1:${port}`,
    ...(metricsAddress === undefined ? {} : { metricsAddress }),
    stop: () => stopChild(child, exited),
  };
}

/**
 * Extra node flags for the servers from BENCH_SERVER_NODE_ARGS (space-separated), e.g.
 * `--cpu-prof --cpu-prof-dir=bench/results/prof` to profile both servers under the very load they
 * are measured with (each writes its profile when it exits on the benchmark's SIGTERM).
 */
function serverNodeArgs(): string[] {
  return (process.env["BENCH_SERVER_NODE_ARGS"] ?? "").split(" ").filter((arg) => arg !== "");
}

/**
 * Settings for every server the benchmark starts, from BENCH_SERVER_ENV (space-separated NAME=value),
 * e.g. `DATABASE_POOL_MAX=4`: to compare a setting under the very load the figures come from. They
 * win over the benchmark's own (its server environment is otherwise not inherited).
 */
function serverEnv(): Record<string, string> {
  const entries = (process.env["BENCH_SERVER_ENV"] ?? "").split(" ").filter((entry) => entry !== "");
  return Object.fromEntries(
    entries.map((entry) => {
      const at = entry.indexOf("=");
      if (at <= 0) throw new Error(`BENCH_SERVER_ENV: "${entry}" is not NAME=value`);
      return [entry.slice(0, at), entry.slice(at + 1)];
    }),
  );
}

async function stopChild(child: ChildProcess, exited: Promise<unknown>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
  await exited;
  clearTimeout(timer);
}

/** Resident memory of a process in bytes (VmRSS of /proc/<pid>/status). */
export function rssBytes(pid: number): number {
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (match === null) throw new Error(`no VmRSS for process ${pid}`);
  return Number(match[1]) * 1024;
}

/** Clock ticks per second of /proc's CPU times (USER_HZ): 100 on Linux on every architecture Node runs on. */
export const USER_HZ = 100;

/** CPU time (user + system, all threads) a process has used so far, in seconds. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // Fields after the command name (which may hold spaces) start at state; utime and stime are the 12th and 13th of those.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / USER_HZ;
}
