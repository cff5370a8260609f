/**
 * etcd's watch under the fan-out scenarios, measured the way ../shared/anchors/etcd/watch-bench.mjs
 * measured it (etcd3 on the same grpc-js; WATCH_CLIENTS Etcd3 instances, each its own connection
 * and ONE multiplexed Watch stream; an 11th for the writes), sized like our scenarios: run by
 * etcd.ts as a child process (so its client CPU is its own, as the anchor's was), it prints one
 * JSON line per measurement on stdout, progress on stderr.
 *
 * env: ETCD_ENDPOINT, ETCD_PID (for RSS), WARMUP_S, DURATION_S, WATCH_CLIENTS (10),
 * SPREAD_WATCHERS / SPREAD_KEYS / SPREAD_RATE (scenario a: many keys), HOT_WATCHERS / HOT_RATE
 * (scenario b: one key), REPLAY_REVISIONS (scenario c: a new watch catching up), ONLY (a,b,c).
 *
 * Latency: each put's value carries its intended send time (an open-loop timer, no coordinated
 * omission); latency = the watcher's `data` callback − that time, per delivery, in an HDR histogram.
 */
import { Etcd3, type IWatchResponse, type Watcher } from "etcd3";
import { newHistogram, recordMs } from "./histogram.js";
import { cpuSeconds, rssBytes } from "./processes.js";
import type { Histogram } from "hdr-histogram-js";

const env = process.env;
const ENDPOINT = env["ETCD_ENDPOINT"] ?? "http://127.0.0.1:23790";
const ETCD_PID = Number(env["ETCD_PID"] ?? 0);
const WARMUP_S = Number(env["WARMUP_S"] ?? 3);
const DURATION_S = Number(env["DURATION_S"] ?? 12);
const WATCH_CLIENTS = Number(env["WATCH_CLIENTS"] ?? 10);
const ONLY = new Set((env["ONLY"] ?? "a,b,c").split(","));
const RUN = `${process.pid}-${Date.now()}`;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const log = (line: string): void => void process.stderr.write(`etcd: ${line}\n`);
const emit = (record: Record<string, unknown>): void => void process.stdout.write(`${JSON.stringify(record)}\n`);
const r2 = (x: number): number => Math.round(x * 100) / 100;

/** etcd's RSS and CPU seconds (processes.ts), or null when its pid is unknown or gone. */
function ofEtcd(read: (pid: number) => number): number | null {
  if (ETCD_PID === 0) return null;
  try {
    return read(ETCD_PID);
  } catch {
    return null;
  }
}

const summary = (h: Histogram) => ({
  count: h.totalCount,
  p50Ms: r2(h.getValueAtPercentile(50) / 1000),
  p95Ms: r2(h.getValueAtPercentile(95) / 1000),
  p99Ms: r2(h.getValueAtPercentile(99) / 1000),
  p999Ms: r2(h.getValueAtPercentile(99.9) / 1000),
  maxMs: r2(h.maxValue / 1000),
});

/** Every Etcd3 instance its own connection (grpc-js would share one otherwise) and its own Watch stream. */
const client = (): Etcd3 => new Etcd3({ hosts: ENDPOINT, grpcOptions: { "grpc.use_local_subchannel_pool": 1 } });

/** Calls `fire(intendedMs)` at `rate` per second on a fixed schedule; returns stop(). */
function ticker(rate: number, fire: (intendedMs: number) => void): () => void {
  const period = 1000 / rate;
  const start = performance.now();
  let i = 0;
  let stopped = false;
  const tick = (): void => {
    if (stopped) return;
    const now = performance.now();
    for (; start + i * period <= now; i++) fire(start + i * period);
    setTimeout(tick, Math.max(0, start + i * period - performance.now()));
  };
  tick();
  return () => void (stopped = true);
}

/**
 * One scenario: `watchers` watchers over `keys` keys (dealt round-robin over the clients, a key's
 * watchers on different clients), `rate` puts a second to random keys; RSS before and with the
 * watchers; delivery and put-ack latency over the measured window.
 */
async function scenario(name: string, writer: Etcd3, clients: readonly Etcd3[], watchers: number, keys: number, rate: number): Promise<void> {
  const keyOf = (k: number): string => `bench/${RUN}/${name}/${String(k).padStart(6, "0")}`;
  const delivery = newHistogram();
  const ack = newHistogram();
  let measuring = false;
  let deliveries = 0;
  let errors = 0;
  const onData = (response: IWatchResponse): void => {
    if (!measuring) return;
    const now = performance.now();
    for (const event of response.events) {
      const intended = Number(event.kv.value.toString().split(":")[1]);
      recordMs(delivery, now - intended);
      deliveries++;
    }
  };
  await sleep(1000);
  const rssBefore = ofEtcd(rssBytes);
  const createStarted = performance.now();
  const created: Watcher[] = await Promise.all(
    Array.from({ length: watchers }, async (_, i) => {
      const watcher = await clients[i % clients.length]!.watch().key(keyOf(i % keys)).create();
      watcher.on("data", onData);
      return watcher;
    }),
  );
  const createSeconds = (performance.now() - createStarted) / 1000;
  log(`${name}: ${watchers} watchers over ${keys} keys created in ${createSeconds.toFixed(1)} s`);
  await sleep(2000);
  const rssWith = ofEtcd(rssBytes);
  let seq = 0;
  const stop = ticker(rate, (intended) => {
    const counted = measuring;
    writer
      .put(keyOf(Math.floor(Math.random() * keys)))
      .value(`${seq++}:${intended}`)
      .then(
        () => counted && recordMs(ack, performance.now() - intended),
        () => errors++,
      );
  });
  await sleep(WARMUP_S * 1000);
  const cpuBefore = ofEtcd(cpuSeconds);
  const started = performance.now();
  measuring = true;
  await sleep(DURATION_S * 1000);
  measuring = false;
  const wall = (performance.now() - started) / 1000;
  const cpuAfter = ofEtcd(cpuSeconds);
  stop();
  await sleep(1000);
  emit({
    test: name,
    watchers,
    keys,
    putsPerSecond: rate,
    clients: clients.length,
    watchCreateSeconds: r2(createSeconds),
    deliveries,
    deliveriesPerSecond: Math.round(deliveries / wall),
    expectedDeliveriesPerSecond: Math.round((rate * watchers) / keys),
    delivery: summary(delivery),
    putAck: summary(ack),
    putErrors: errors,
    rssBeforeBytes: rssBefore,
    rssWithBytes: rssWith,
    bytesPerWatcher: rssBefore !== null && rssWith !== null ? Math.round((rssWith - rssBefore) / watchers) : null,
    serverCpuPercent: cpuBefore !== null && cpuAfter !== null ? r2(((cpuAfter - cpuBefore) / wall) * 100) : null,
  });
  await Promise.all(created.map((w) => w.cancel().catch(() => {})));
}

/**
 * Replay: `revisions` puts over 100 keys under a prefix (32 in flight), then a NEW client watches
 * the prefix from the revision before them; time from create to the last event, three times.
 */
async function replay(writer: Etcd3, revisions: number): Promise<void> {
  const prefix = `bench/${RUN}/c/`;
  const startRevision = Number((await writer.get("bench/none").exec()).header.revision) + 1;
  const writeStarted = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (next < revisions) {
        const i = next++;
        await writer.put(`${prefix}${i % 100}`).value(`v${i}`);
      }
    }),
  );
  const writeSeconds = (performance.now() - writeStarted) / 1000;
  const reps: Array<{ ms: number; firstMs: number; perSecond: number }> = [];
  for (let rep = 0; rep < 3; rep++) {
    const c = client();
    const started = performance.now();
    let got = 0;
    let firstMs = 0;
    await new Promise<void>((resolve, reject) => {
      c.watch()
        .prefix(prefix)
        .startRevision(String(startRevision))
        .create()
        .then((w) => {
          w.on("data", (res: IWatchResponse) => {
            if (firstMs === 0) firstMs = performance.now() - started;
            got += res.events.length;
            if (got >= revisions) resolve();
          });
        }, reject);
    });
    const ms = performance.now() - started;
    reps.push({ ms: Math.round(ms), firstMs: Math.round(firstMs), perSecond: Math.round(revisions / (ms / 1000)) });
    c.close();
  }
  const sorted = reps.map((r) => r.perSecond).sort((a, b) => a - b);
  emit({ test: "c", revisions, writeSeconds: r2(writeSeconds), reps, medianPerSecond: sorted[1] });
}

const writer = client();
await writer.put(`bench/${RUN}/hello`).value("1");
const clients = Array.from({ length: WATCH_CLIENTS }, client);
if (ONLY.has("a")) await scenario("a", writer, clients, Number(env["SPREAD_WATCHERS"] ?? 10_000), Number(env["SPREAD_KEYS"] ?? 1_000), Number(env["SPREAD_RATE"] ?? 100));
if (ONLY.has("b")) await scenario("b", writer, clients, Number(env["HOT_WATCHERS"] ?? 1_000), 1, Number(env["HOT_RATE"] ?? 20));
if (ONLY.has("c")) await replay(writer, Number(env["REPLAY_REVISIONS"] ?? 10_000));
for (const c of clients) c.close();
writer.close();
process.exit(0);
