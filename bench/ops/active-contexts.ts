/**
 * Memory per active context (issue 7 item 5): the server's RSS before and after N contexts become
 * active, divided by N. An active context is one with a participant holding a KeepAlive stream and
 * a WatchContext watcher, both open and idle. The contexts and their participants (one agent each,
 * so one watch per principal) are made through the API first; the server collects its garbage
 * (gc-on-signal.ts) before each RSS reading, so the figure is what the open streams keep alive.
 *
 * The streams are held by child processes (active-holder.ts), not by this one, so the driver's
 * memory never mixes in and the client work is spread over cores.
 */
import { fork, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { REPO_ROOT, rssBytes, type ServerProcess } from "../fanout/processes.js";
import type { ActiveItem, HolderCommand, HolderCount, HolderOpened } from "./active-holder.js";
import type { Seeder } from "./seed-data.js";

const HOLDER = fileURLToPath(new URL("./active-holder.ts", import.meta.url));

export interface MemoryResult {
  /** Contexts asked to become active. */
  readonly contexts: number;
  /** Contexts whose two streams both opened. */
  readonly active: number;
  /** Streams that failed to open, by status. */
  readonly failedByCode: Record<string, number>;
  /** Streams still open when RSS was read after the idle wait, and those that had ended. */
  readonly streamsOpen: number;
  readonly endedByCode: Record<string, number>;
  readonly rssBeforeBytes: number;
  readonly rssAfterBytes: number;
  /** (rssAfter − rssBefore) / active. */
  readonly bytesPerContext: number;
  readonly seedSeconds: number;
  readonly openSeconds: number;
  /** Whether the server collected garbage before each reading (it does when started with gc-on-signal.ts). */
  readonly gcBeforeReadings: boolean;
}

/** Issue 7's bound (the seed promises < 10 MB). */
export const MEMORY_TARGET_BYTES = 50 * 1024;

export interface MemoryOptions {
  /** Restarts the server (after the seeding, so RSS before is a fresh idle process's). */
  readonly restart: () => Promise<void>;
  /** The server process now serving. */
  readonly current: () => ServerProcess;
  readonly seeder: Seeder;
  readonly contexts: number;
  /** Child processes holding the streams. */
  readonly holders: number;
  /** Streams per HTTP/2 connection, under the server's GRPC_MAX_CONCURRENT_STREAMS (1,000). */
  readonly streamsPerChannel: number;
  /** Contexts being opened at once per holder. */
  readonly concurrency: number;
  /** How long the streams stay open and idle before RSS is read. */
  readonly settleMs: number;
  readonly log: (line: string) => void;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Asks the server for a full GC (SIGUSR2, see gc-on-signal.ts), twice, and reads its RSS. */
async function settledRss(pid: number, waitMs: number): Promise<number> {
  for (let i = 0; i < 2; i++) {
    process.kill(pid, "SIGUSR2");
    await sleep(waitMs);
  }
  return rssBytes(pid);
}

class Holder {
  private readonly child: ChildProcess;
  private readonly exited: Promise<unknown>;

  constructor(name: string) {
    this.child = fork(HOLDER, [], { cwd: REPO_ROOT, execArgv: ["--import", "tsx"], stdio: ["ignore", "inherit", "inherit", "ipc"], serialization: "advanced" });
    this.exited = once(this.child, "exit");
    this.child.once("exit", (code, signal) => {
      if (code !== 0 && signal === null) console.error(`${name} exited with ${code}`);
    });
  }

  async ask<R>(command: HolderCommand, kind: string): Promise<R> {
    const reply = new Promise<R>((resolve, reject) => {
      const onMessage = (message: { kind: string }): void => {
        if (message.kind !== kind) return;
        this.child.off("message", onMessage);
        resolve(message as R);
      };
      this.child.on("message", onMessage);
      void this.exited.then(() => reject(new Error("an active-context holder exited")));
    });
    this.child.send(command);
    return reply;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    await Promise.race([this.ask({ kind: "close" }, "closed").catch(() => null), sleep(5_000)]);
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill("SIGKILL");
    await this.exited;
  }
}

/**
 * Makes `contexts` contexts active on the server and measures its RSS per active context; the
 * streams are closed (and the holders gone) when it returns.
 */
export async function measureActiveContexts(o: MemoryOptions): Promise<MemoryResult> {
  const seedStarted = Date.now();
  const contextIds = await o.seeder.createContexts(o.contexts, 10);
  const run = seedStarted.toString(36);
  const items: ActiveItem[] = await o.seeder.addAgents(contextIds, (i) => `active-${run}-${i}`);
  const seedSeconds = (Date.now() - seedStarted) / 1000;
  o.log(`memory: ${items.length.toLocaleString("en-US")} contexts with a participant each seeded in ${seedSeconds.toFixed(0)} s`);

  await o.restart();
  const server = o.current();
  const gcWaitMs = Math.min(1_000, o.settleMs);
  const rssBeforeBytes = await settledRss(server.pid, gcWaitMs);
  const holders = Array.from({ length: o.holders }, (_, i) => new Holder(`holder-${i}`));
  try {
    const opened = await Promise.all(
      holders.map((h, w) =>
        h.ask<HolderOpened>(
          {
            kind: "open",
            address: server.address,
            items: items.filter((_, i) => i % holders.length === w),
            streamsPerChannel: o.streamsPerChannel,
            concurrency: o.concurrency,
          },
          "opened",
        ),
      ),
    );
    const active = opened.reduce((sum, r) => sum + r.opened, 0);
    const failedByCode: Record<string, number> = {};
    for (const r of opened) for (const [code, n] of Object.entries(r.failedByCode)) failedByCode[code] = (failedByCode[code] ?? 0) + n;
    const openSeconds = Math.max(...opened.map((r) => r.seconds));
    o.log(`memory: ${active.toLocaleString("en-US")} active contexts (${(active * 2).toLocaleString("en-US")} streams) opened in ${openSeconds.toFixed(0)} s${Object.keys(failedByCode).length > 0 ? `, failed: ${JSON.stringify(failedByCode)}` : ""}`);
    await sleep(o.settleMs);
    const rssAfterBytes = await settledRss(server.pid, gcWaitMs);
    const counts = await Promise.all(holders.map((h) => h.ask<HolderCount>({ kind: "count" }, "count")));
    const endedByCode: Record<string, number> = {};
    for (const c of counts) for (const [code, n] of Object.entries(c.endedByCode)) endedByCode[code] = (endedByCode[code] ?? 0) + n;
    const result: MemoryResult = {
      contexts: o.contexts,
      active,
      failedByCode,
      streamsOpen: counts.reduce((sum, c) => sum + c.open, 0),
      endedByCode,
      rssBeforeBytes,
      rssAfterBytes,
      bytesPerContext: active === 0 ? 0 : Math.round((rssAfterBytes - rssBeforeBytes) / active),
      seedSeconds,
      openSeconds,
      gcBeforeReadings: true,
    };
    o.log(
      `memory: server RSS ${(rssBeforeBytes / 2 ** 20).toFixed(0)} → ${(rssAfterBytes / 2 ** 20).toFixed(0)} MiB, ` +
        `${(result.bytesPerContext / 1024).toFixed(1)} KiB per active context (${result.streamsOpen} streams still open)`,
    );
    return result;
  } finally {
    await Promise.all(holders.map((h) => h.stop()));
  }
}

/** The report's line: figures, and the target met or missed (missed too when contexts failed to become active or streams ended). */
export function memoryTable(result: MemoryResult | undefined): string {
  const lines = [
    "| what | active contexts | streams open at reading | server RSS before → after | per active context | target |",
    "|---|---|---|---|---|---|",
  ];
  if (result === undefined) return [...lines, "| server memory per active context | not run | | | | |"].join("\n");
  const mib = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(0)} MiB`;
  const complete = result.active === result.contexts && result.streamsOpen === result.active * 2;
  const met = complete && result.bytesPerContext < MEMORY_TARGET_BYTES;
  const failures = Object.entries(result.failedByCode).map(([code, n]) => `${n} ${code}`);
  lines.push(
    `| server memory per active context (KeepAlive participant + watcher, GC before each reading) | ${result.active.toLocaleString("en-US")} of ${result.contexts.toLocaleString("en-US")}${failures.length > 0 ? ` (failed: ${failures.join(", ")})` : ""} | ${result.streamsOpen.toLocaleString("en-US")} | ${mib(result.rssBeforeBytes)} → ${mib(result.rssAfterBytes)} | ${(result.bytesPerContext / 1024).toFixed(1)} KiB | < 50 KiB (seed < 10 MB): ${met ? "met" : "**missed**"} |`,
  );
  return lines.join("\n");
}
