/**
 * etcd beside ours in the same run (issue 16): when an `etcd` binary is on the PATH (Debian:
 * `apt-get install etcd-server`; or ETCD_BIN), a throw-away etcd on loopback in a temp data dir
 * (a real fsync per commit, as ours has Postgres's) runs the same two scenarios through
 * etcd-watch.ts, in a process of its own, and is stopped again. Without etcd the run says so and
 * goes on: CI need not install it.
 */
import { execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { REPO_ROOT } from "./processes.js";
import type { Cleanup } from "./resources.js";
import type { FanoutSettings, Only } from "./settings.js";

/** Latency percentiles as etcd-watch.ts prints them (ms). */
export interface EtcdLatency {
  readonly count: number;
  readonly p50Ms: number;
  readonly p95Ms: number;
  readonly p99Ms: number;
  readonly p999Ms: number;
  readonly maxMs: number;
}

/** One etcd scenario's figures (etcd-watch.ts's JSON line). */
export interface EtcdScenario {
  readonly test: "a" | "b";
  readonly watchers: number;
  readonly keys: number;
  readonly putsPerSecond: number;
  readonly clients: number;
  readonly watchCreateSeconds: number;
  readonly deliveriesPerSecond: number;
  readonly expectedDeliveriesPerSecond: number;
  readonly delivery: EtcdLatency;
  readonly putAck: EtcdLatency;
  readonly putErrors: number;
  readonly bytesPerWatcher: number | null;
  readonly serverCpuPercent: number | null;
}

/** Scenario c: a new watch catching up on `revisions` (etcd-watch.ts's replay). */
export interface EtcdReplay {
  readonly test: "c";
  readonly revisions: number;
  readonly reps: ReadonlyArray<{ readonly ms: number; readonly firstMs: number; readonly perSecond: number }>;
  readonly medianPerSecond: number;
}

export type EtcdOutcome =
  | { readonly ran: true; readonly version: string; readonly scenarios: readonly EtcdScenario[]; readonly replays: readonly EtcdReplay[] }
  | { readonly ran: false; readonly why: string };

const CLIENT_PORT = 23790;
const PEER_PORT = 23800;

/** The etcd binary to run, or undefined when there is none. */
function etcdBinary(): string | undefined {
  const explicit = process.env["ETCD_BIN"];
  if (explicit !== undefined && explicit !== "") return explicit;
  try {
    return execFileSync("sh", ["-c", "command -v etcd"], { encoding: "utf8" }).trim() || undefined;
  } catch {
    return undefined;
  }
}

async function healthy(endpoint: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      if ((await fetch(`${endpoint}/health`)).ok) return true;
    } catch {
      // not up yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return false;
}

/** Runs etcd's side of the scenarios `only` selects, with our settings' sizes and windows. */
export async function runEtcd(settings: FanoutSettings, only: Only, cleanup: Cleanup): Promise<EtcdOutcome> {
  const binary = etcdBinary();
  if (binary === undefined) return { ran: false, why: "no etcd on the PATH (Debian: apt-get install etcd-server; or set ETCD_BIN)" };
  const version = execFileSync(binary, ["--version"], { encoding: "utf8" }).split("\n")[0] ?? "etcd";
  const dataDir = await mkdtemp(join(tmpdir(), "mplp-bench-etcd-"));
  const endpoint = `http://127.0.0.1:${CLIENT_PORT}`;
  const peer = `http://127.0.0.1:${PEER_PORT}`;
  const etcd = spawn(
    binary,
    [
      ...["--data-dir", join(dataDir, "etcd"), "--name", "bench"],
      ...["--listen-client-urls", endpoint, "--advertise-client-urls", endpoint],
      ...["--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer, "--initial-cluster", `bench=${peer}`],
      ...["--log-level", "warn"],
    ],
    { stdio: "ignore" },
  );
  const stopEtcd = cleanup.add(`stop etcd (pid ${etcd.pid}) and remove ${dataDir}`, async () => {
    if (etcd.exitCode === null && etcd.signalCode === null) {
      etcd.kill("SIGTERM");
      await once(etcd, "exit");
    }
    await rm(dataDir, { recursive: true, force: true });
  });
  try {
    if (!(await healthy(endpoint, 20_000))) return { ran: false, why: `etcd did not answer ${endpoint}/health within 20 s (is the port taken?)` };
    const child = spawn(process.execPath, ["--import", "tsx", "bench/fanout/etcd-watch.ts"], {
      cwd: REPO_ROOT,
      stdio: ["ignore", "pipe", "inherit"],
      env: {
        ...process.env,
        ETCD_ENDPOINT: endpoint,
        ETCD_PID: String(etcd.pid),
        WARMUP_S: String(settings.warmupMs / 1000),
        DURATION_S: String(settings.measureMs / 1000),
        WATCH_CLIENTS: "10",
        SPREAD_WATCHERS: String(settings.spread.watchers),
        SPREAD_KEYS: String(settings.spread.contexts),
        SPREAD_RATE: String(settings.spread.commitsPerSecond),
        HOT_WATCHERS: String(settings.hot.watchers),
        HOT_RATE: String(settings.hot.commitsPerSecond),
        REPLAY_REVISIONS: String(settings.replayRevisions),
        ONLY: only ?? "a,b,c",
      },
    });
    const stopChild = cleanup.add(`stop the etcd driver (pid ${child.pid})`, async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    });
    const scenarios: EtcdScenario[] = [];
    const replays: EtcdReplay[] = [];
    createInterface({ input: child.stdout! }).on("line", (line) => {
      if (!line.startsWith("{")) return;
      const record = JSON.parse(line) as EtcdScenario | EtcdReplay;
      if (record.test === "c") replays.push(record);
      else scenarios.push(record);
    });
    const [code] = (await once(child, "exit")) as [number | null];
    await stopChild();
    if (code !== 0) return { ran: false, why: `the etcd driver exited with ${code}` };
    return { ran: true, version, scenarios, replays };
  } finally {
    await stopEtcd();
  }
}
