/**
 * The CLI as a user runs it: `node --import tsx src/cli/main.ts …` in a child process (the built
 * bin runs the same code), one call that resolves with stdout, stderr and the exit code, and a
 * long-running form (watch) whose lines can be awaited with bounded polls.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function spawnCli(args: readonly string[], env: Readonly<Record<string, string>> = {}): ChildProcess {
  return spawn(process.execPath, ["--import", "tsx", "src/cli/main.ts", ...args], {
    // No MPLP_* from the developer's shell: the test says everything on the command line.
    env: { PATH: process.env["PATH"] ?? "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
}

/** Runs one command to its end (bounded: a hung command is killed and fails the test). */
export async function cli(args: readonly string[], env?: Readonly<Record<string, string>>, timeoutMs = 30_000): Promise<CliResult> {
  const child = spawnCli(args, env);
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  const [code] = (await once(child, "exit")) as [number | null];
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/** A command that keeps running (watch): its lines so far, waits on them, and stop(). */
export class RunningCli {
  readonly lines: string[] = [];
  stderr = "";
  readonly exited: Promise<number | null>;
  private readonly child: ChildProcess;

  constructor(args: readonly string[], env?: Readonly<Record<string, string>>) {
    this.child = spawnCli(args, env);
    createInterface({ input: this.child.stdout! }).on("line", (line) => this.lines.push(line));
    this.child.stderr!.on("data", (chunk: Buffer) => (this.stderr += chunk.toString()));
    this.exited = once(this.child, "exit").then(([code]) => code as number | null);
  }

  /** Waits until `condition` holds over the lines; fails after the bound, or if the command exits first. */
  async until(what: string, condition: (lines: readonly string[]) => boolean, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!condition(this.lines)) {
      if (this.child.exitCode !== null) throw new Error(`the command exited (${this.child.exitCode}) before ${what}:\n${this.lines.join("\n")}\n${this.stderr}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}:\n${this.lines.join("\n")}\n${this.stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  /** SIGTERM (the CLI's Ctrl-C path) and the exit code. */
  async stop(): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill("SIGTERM");
    return this.exited;
  }
}

/** The revisions of `#N …` event lines, in order. */
export function revisionsOf(lines: readonly string[]): number[] {
  return lines.flatMap((line) => {
    const match = /^#(\d+) /.exec(line);
    return match ? [Number(match[1])] : [];
  });
}
