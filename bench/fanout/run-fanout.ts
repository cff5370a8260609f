/**
 * One fan-out measurement against servers that are already up: open the watch streams (read the
 * servers' RSS before and after), run the open-loop writer through warm-up and the measured window,
 * let the last deliveries drain, and merge what every worker saw.
 */
import { readFile } from "node:fs/promises";
import { loadavg } from "node:os";
import { encodeHistogram, ghzLatency, mergeHistograms, summarize, type LatencySummary } from "./histogram.js";
import { cpuSeconds, rssBytes, type ServerProcess } from "./processes.js";
import type { WatchAssignment, WatchResults, WatchRpc } from "./protocol.js";
import type { Cleanup } from "./resources.js";
import type { FanoutSettings } from "./settings.js";
import { wallClockMs } from "./stamp.js";
import { LoadWorker } from "./workers.js";

export interface FanoutSpec {
  /** Short name in the report, e.g. "a-two-instances". */
  readonly name: string;
  readonly title: string;
  /** Watchers are dealt round-robin over these servers (and over the contexts). */
  readonly watchServers: readonly ServerProcess[];
  /** The server every commit goes to. */
  readonly writeServer: ServerProcess;
  readonly contextIds: readonly string[];
  readonly watchers: number;
  readonly commitsPerSecond: number;
  readonly principal: string;
  /** WatchContext streams, or watches on about WATCH_STREAMS Watch streams (as etcd's anchor spreads its watchers). */
  readonly rpc: WatchRpc;
}

/** With rpc "watch", the watchers share about this many Watch streams (etcd's anchor: 10 clients, one Watch stream each). */
export const WATCH_STREAMS = 10;

export interface ServerFigures {
  readonly label: string;
  readonly streams: number;
  readonly rssIdleBytes: number;
  readonly rssWatchingBytes: number;
  /** (RSS with the streams open and idle − RSS before them) / streams. */
  readonly bytesPerStream: number;
  /** CPU used during the measured window, in % of one core. */
  readonly cpuPercent: number;
}

export interface FanoutResult {
  readonly name: string;
  readonly title: string;
  readonly settings: {
    readonly watchers: number;
    readonly contexts: number;
    readonly commitsPerSecond: number;
    readonly warmupSeconds: number;
    readonly measureSeconds: number;
    readonly watchWorkers: number;
    readonly streamsPerChannel: number;
    readonly rpc: WatchRpc;
  };
  readonly open: { readonly opened: number; readonly failedByCode: Record<string, number>; readonly seconds: number };
  /** Commit→delivery latency of every delivery whose commit was stamped in the window. */
  readonly latency: LatencySummary;
  /** The same, per server the watchers were on (two-instance runs: the writer's and the other). */
  readonly latencyByServer: Record<string, LatencySummary>;
  readonly deliveries: {
    /** Σ over contexts of (commits acknowledged in the window × streams on that context). */
    readonly expected: number;
    readonly delivered: number;
    /** expected − delivered: revisions committed but not (yet, after the drain) delivered. */
    readonly missing: number;
    readonly perSecond: number;
    readonly repeated: number;
    readonly gaps: number;
    readonly payloadBytes: { readonly min: number; readonly max: number };
  };
  readonly commits: {
    readonly sent: number;
    readonly acknowledgedInWindow: number;
    readonly perSecond: number;
    readonly skipped: number;
    readonly errorsByCode: Record<string, number>;
    /** UpdateSharedState round trip. */
    readonly latency: LatencySummary;
    /** How late commits left against the open-loop schedule (the writer thread's own delay). */
    readonly scheduleLag: LatencySummary;
  };
  /** Watch streams that ended during the run, by status (none should). */
  readonly streamEndsByCode: Record<string, number>;
  readonly servers: readonly ServerFigures[];
  /** This process (all load threads), in % of one core, over the window. */
  readonly driverCpuPercent: number;
  /** The whole machine's CPU busy over the window, in % of all cores (others' processes included). */
  readonly machineBusyPercent: number;
  /** The 1-minute load average at the end of the window: above the core count, something waited for CPU. */
  readonly loadAverage: number;
  /** ghz's JSON report fields for the deliveries (latencies in ns), as the rest of bench/ writes them. */
  readonly ghz: Record<string, unknown>;
  /** The merged HDR histogram (µs), compressed base64, for re-analysis. */
  readonly histogram: string;
}

/** Busy and total jiffies of all CPUs, from the first line of /proc/stat. */
async function machineJiffies(): Promise<{ busy: number; total: number }> {
  const fields = (await readFile("/proc/stat", "utf8")).split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = fields.slice(0, 8).reduce((a, b) => a + b, 0);
  const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
  return { busy: total - idle, total };
}

const add = (into: Record<string, number>, from: Readonly<Record<string, number>>): void => {
  for (const [key, n] of Object.entries(from)) into[key] = (into[key] ?? 0) + n;
};

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export async function runFanout(spec: FanoutSpec, settings: FanoutSettings, cleanup: Cleanup): Promise<FanoutResult> {
  const workers = Array.from({ length: settings.watchWorkers }, (_, i) => new LoadWorker(`${spec.name}-watch-${i}`));
  const writer = new LoadWorker(`${spec.name}-writer`);
  const stopWorkers = cleanup.add(`stop the load workers of ${spec.name}`, () => Promise.all([...workers, writer].map((w) => w.stop())));
  try {
    // Deal watcher i to context i mod M and server i mod S, so every context has watchers on every server.
    const plan = workers.map(() => new Map<ServerProcess, string[]>());
    const streamsOn = new Map<ServerProcess, number>();
    const streamsPerContext = new Map<string, Map<string, number>>();
    for (let i = 0; i < spec.watchers; i++) {
      const contextId = spec.contextIds[i % spec.contextIds.length]!;
      const server = spec.watchServers[i % spec.watchServers.length]!;
      const mine = plan[i % workers.length]!;
      mine.set(server, [...(mine.get(server) ?? []), contextId]);
      streamsOn.set(server, (streamsOn.get(server) ?? 0) + 1);
      const perServer = streamsPerContext.get(contextId) ?? new Map<string, number>();
      perServer.set(server.label, (perServer.get(server.label) ?? 0) + 1);
      streamsPerContext.set(contextId, perServer);
    }
    const servers = [...new Set([...spec.watchServers, spec.writeServer])];
    const rssIdle = new Map(servers.map((s) => [s, rssBytes(s.pid)]));

    const openStarted = performance.now();
    const opens = await Promise.all(
      workers.map((worker, w) =>
        worker.send({
          kind: "open-watchers",
          assignments: [...plan[w]!].map(([server, contextIds]): WatchAssignment => ({ address: server.address, server: server.label, contextIds })),
          streamsPerChannel: spec.rpc === "watch" ? Math.ceil(spec.watchers / WATCH_STREAMS) : settings.streamsPerChannel,
          rpc: spec.rpc,
          openConcurrency: settings.openConcurrency,
          principal: spec.principal,
        }),
      ),
    );
    const openSeconds = (performance.now() - openStarted) / 1000;
    const failedByCode: Record<string, number> = {};
    for (const open of opens) add(failedByCode, open.failedByCode);
    const opened = opens.reduce((n, o) => n + o.opened, 0);
    process.stdout.write(`  ${spec.title}: ${opened} streams open in ${openSeconds.toFixed(1)} s${opened < spec.watchers ? ` (${spec.watchers - opened} failed)` : ""}\n`);

    await sleep(settings.idleSettleMs);
    const rssWatching = new Map(servers.map((s) => [s, rssBytes(s.pid)]));

    const startAtMs = wallClockMs() + 500;
    const measureFromMs = startAtMs + settings.warmupMs;
    const measureToMs = measureFromMs + settings.measureMs;
    await Promise.all(workers.map((w) => w.send({ kind: "watch-window", measureFromMs, measureToMs })));

    // CPU over exactly the window, sampled by timers beside the running writer.
    let cpuFrom: { servers: Map<ServerProcess, number>; driver: NodeJS.CpuUsage; machine: { busy: number; total: number }; load: number } | undefined;
    let cpuTo: typeof cpuFrom;
    const sample = async () => ({
      servers: new Map(servers.map((s) => [s, cpuSeconds(s.pid)])),
      driver: process.cpuUsage(),
      machine: await machineJiffies(),
      load: loadavg()[0] ?? 0,
    });
    const fromTimer = setTimeout(() => void sample().then((s) => (cpuFrom = s)), measureFromMs - wallClockMs());
    const toTimer = setTimeout(() => void sample().then((s) => (cpuTo = s)), measureToMs - wallClockMs());
    process.stdout.write(`  ${spec.title}: ${spec.commitsPerSecond} commits/s, ${settings.warmupMs / 1000} s warm-up + ${settings.measureMs / 1000} s measured…\n`);
    const writes = await writer.send({
      kind: "write",
      address: spec.writeServer.address,
      contextIds: spec.contextIds,
      principal: spec.principal,
      rate: spec.commitsPerSecond,
      channels: settings.writerChannels,
      startAtMs,
      measureFromMs,
      measureToMs,
      maxInFlight: settings.maxInFlight,
    });
    await sleep(settings.drainMs);
    clearTimeout(fromTimer);
    clearTimeout(toTimer);
    const watches: WatchResults[] = await Promise.all(workers.map((w) => w.send({ kind: "collect" })));
    const windowSeconds = settings.measureMs / 1000;

    const byServer: Record<string, LatencySummary> = {};
    const labels = [...new Set(spec.watchServers.map((s) => s.label))];
    for (const label of labels) {
      const merged = mergeHistograms(watches.map((w) => w.histograms[label]).filter((h): h is string => h !== undefined));
      byServer[label] = summarize(merged);
      merged.destroy();
    }
    const all = mergeHistograms(watches.flatMap((w) => Object.values(w.histograms)));
    const commitHistogram = mergeHistograms([writes.commitHistogram]);
    const lagHistogram = mergeHistograms([writes.lagHistogram]);

    let expected = 0;
    for (const [contextId, commits] of Object.entries(writes.committedInWindow)) {
      for (const streams of streamsPerContext.get(contextId)?.values() ?? []) expected += commits * streams;
    }
    const delivered = watches.reduce((n, w) => n + Object.values(w.delivered).reduce((a, b) => a + b, 0), 0);
    const streamEndsByCode: Record<string, number> = {};
    for (const w of watches) add(streamEndsByCode, w.endedByCode);
    const acknowledged = Object.values(writes.committedInWindow).reduce((a, b) => a + b, 0);
    const payloads = watches.filter((w) => w.payloadBytes.max > 0).map((w) => w.payloadBytes);

    const cpuWindow = cpuFrom !== undefined && cpuTo !== undefined ? { from: cpuFrom, to: cpuTo } : undefined;
    const serverFigures = servers.map((server): ServerFigures => {
      const streams = streamsOn.get(server) ?? 0;
      const idle = rssIdle.get(server)!;
      const watching = rssWatching.get(server)!;
      const cpu = cpuWindow === undefined ? 0 : (cpuWindow.to.servers.get(server)! - cpuWindow.from.servers.get(server)!) / windowSeconds;
      return {
        label: server.label,
        streams,
        rssIdleBytes: idle,
        rssWatchingBytes: watching,
        bytesPerStream: streams === 0 ? 0 : Math.round((watching - idle) / streams),
        cpuPercent: Math.round(cpu * 1000) / 10,
      };
    });
    const driverCpu =
      cpuWindow === undefined
        ? 0
        : (cpuWindow.to.driver.user + cpuWindow.to.driver.system - cpuWindow.from.driver.user - cpuWindow.from.driver.system) / 1e6 / windowSeconds;
    const machineBusy =
      cpuWindow === undefined ? 0 : (cpuWindow.to.machine.busy - cpuWindow.from.machine.busy) / Math.max(1, cpuWindow.to.machine.total - cpuWindow.from.machine.total);

    const errorDistribution: Record<string, number> = {};
    for (const [code, n] of Object.entries(writes.errorsByCode)) errorDistribution[`UpdateSharedState ${code}`] = n;
    for (const [code, n] of Object.entries(streamEndsByCode)) errorDistribution[`WatchContext ended ${code}`] = n;
    for (const [code, n] of Object.entries(failedByCode)) errorDistribution[`WatchContext open ${code}`] = n;

    const result: FanoutResult = {
      name: spec.name,
      title: spec.title,
      settings: {
        watchers: spec.watchers,
        contexts: spec.contextIds.length,
        commitsPerSecond: spec.commitsPerSecond,
        warmupSeconds: settings.warmupMs / 1000,
        measureSeconds: windowSeconds,
        watchWorkers: settings.watchWorkers,
        streamsPerChannel: spec.rpc === "watch" ? Math.ceil(spec.watchers / WATCH_STREAMS) : settings.streamsPerChannel,
        rpc: spec.rpc,
      },
      open: { opened, failedByCode, seconds: Math.round(openSeconds * 10) / 10 },
      latency: summarize(all),
      latencyByServer: byServer,
      deliveries: {
        expected,
        delivered,
        missing: expected - delivered,
        perSecond: Math.round(delivered / windowSeconds),
        repeated: watches.reduce((n, w) => n + w.repeated, 0),
        gaps: watches.reduce((n, w) => n + w.gaps, 0),
        payloadBytes: payloads.length === 0 ? { min: 0, max: 0 } : { min: Math.min(...payloads.map((p) => p.min)), max: Math.max(...payloads.map((p) => p.max)) },
      },
      commits: {
        sent: writes.sent,
        acknowledgedInWindow: acknowledged,
        perSecond: Math.round((acknowledged / windowSeconds) * 10) / 10,
        skipped: writes.skipped,
        errorsByCode: { ...writes.errorsByCode },
        latency: summarize(commitHistogram),
        scheduleLag: summarize(lagHistogram),
      },
      streamEndsByCode,
      servers: serverFigures,
      driverCpuPercent: Math.round(driverCpu * 1000) / 10,
      machineBusyPercent: Math.round(machineBusy * 1000) / 10,
      loadAverage: cpuWindow === undefined ? 0 : Math.round(cpuWindow.to.load * 100) / 100,
      ghz: {
        ...ghzLatency(all),
        total: Math.round(settings.measureMs * 1e6),
        rps: delivered / windowSeconds,
        statusCodeDistribution: { OK: delivered },
        errorDistribution,
      },
      histogram: encodeHistogram(all),
    };
    all.destroy();
    commitHistogram.destroy();
    lagHistogram.destroy();
    return result;
  } finally {
    await stopWorkers();
  }
}
