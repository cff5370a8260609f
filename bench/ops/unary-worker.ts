/**
 * A unary load worker thread: runs one scenario's share of load (open or closed loop, see
 * unary-protocol.ts) on channels of its own and answers with an HDR histogram and counts. Several
 * run side by side because one Node thread encoding and decoding protobuf saturates a core before a
 * grpc-js server does. Started through tsx's `tsImport` (see unary-pool.ts).
 */
import * as grpc from "@grpc/grpc-js";
import { parentPort } from "node:worker_threads";
import { newChannel, statusName } from "../fanout/grpc-paths.js";
import { encodeHistogram, newHistogram, recordMs } from "../fanout/histogram.js";
import { wallClockMs } from "../fanout/stamp.js";
import { BUCKETS, bucketOf } from "./latency-buckets.js";
import { methodOf, requestEncoder } from "./scenario-config.js";
import type { UnaryReply, UnaryRequest, UnaryResults, UnaryRun } from "./unary-protocol.js";

/** A call unanswered for this long fails with DEADLINE_EXCEEDED, so a run always ends. */
const CALL_DEADLINE_MS = 20_000;
const identity = (bytes: Buffer): Buffer => bytes;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

const increment = (counts: Record<string, number>, key: string): void => {
  counts[key] = (counts[key] ?? 0) + 1;
};

let channels: grpc.Client[] = [];

async function run(command: UnaryRun): Promise<UnaryResults> {
  channels = Array.from({ length: command.channels }, () => newChannel(command.address));
  const { path } = methodOf(command.config.call);
  const encode = requestEncoder(command.config);
  const metadata = new grpc.Metadata();
  for (const [key, value] of Object.entries(command.config.metadata ?? {})) metadata.set(key, value);
  const histogram = newHistogram();
  const lag = newHistogram();
  const buckets = new Array<number>(BUCKETS).fill(0);
  const statusCodes: Record<string, number> = {};
  const errors: Record<string, number> = {};
  const measureFrom = command.startAtMs + command.warmupMs;
  const measureTo = measureFrom + command.measureMs;
  let sent = 0;
  let skipped = 0;
  let exhausted = 0;
  let inFlight = 0;
  let ok = 0;

  /** The next request's bytes, or undefined when the consumable ids have run out. */
  const next = (): Buffer | undefined => {
    const n = sent;
    const items = command.items;
    if (command.consume && n >= items.length) return undefined;
    const item = items.length === 0 ? undefined : items[n % items.length];
    return encode({ requestNumber: n, workerId: command.workerId, contextId: item?.contextId, participantId: item?.participantId });
  };

  /** Sends one call; `fromMs` is when its latency starts (the schedule in open loop). */
  const call = (request: Buffer, fromMs: number): Promise<void> => {
    const channel = channels[sent % channels.length]!;
    sent++;
    inFlight++;
    return new Promise<void>((resolve) => {
      channel.makeUnaryRequest(path, identity, identity, request, metadata, { deadline: Date.now() + CALL_DEADLINE_MS }, (error) => {
        inFlight--;
        const doneMs = wallClockMs();
        if (fromMs >= measureFrom && fromMs < measureTo) {
          const latency = doneMs - fromMs;
          buckets[bucketOf(latency)]!++;
          if (error) {
            const name = statusName(error.code ?? grpc.status.UNKNOWN);
            increment(statusCodes, name);
            increment(errors, `${name}: ${error.details ?? error.message}`.slice(0, 200));
          } else {
            ok++;
            increment(statusCodes, "OK");
            recordMs(histogram, latency);
          }
        }
        resolve();
      });
    });
  };

  const pending = new Set<Promise<void>>();
  await sleep(Math.max(0, command.startAtMs - wallClockMs()));
  if (command.mode === "open") {
    const interval = 1000 / command.rate;
    for (let i = 0; ; i++) {
      const due = command.startAtMs + i * interval;
      if (due >= measureTo) break;
      const wait = due - wallClockMs();
      if (wait > 1) await sleep(wait);
      // Behind schedule the loop would never yield, and no response could be read: let them in.
      else if (i % 8 === 0) await new Promise<void>((resolve) => setImmediate(resolve));
      recordMs(lag, Math.max(0, wallClockMs() - due));
      if (inFlight >= command.maxInFlight) {
        if (due >= measureFrom) skipped++;
        continue;
      }
      const request = next();
      if (request === undefined) {
        exhausted++;
        break;
      }
      const p = call(request, due);
      pending.add(p);
      void p.then(() => pending.delete(p));
    }
  } else {
    const loop = async (): Promise<void> => {
      while (wallClockMs() < measureTo) {
        const request = next();
        if (request === undefined) {
          exhausted++;
          return;
        }
        await call(request, wallClockMs());
      }
    };
    await Promise.all(Array.from({ length: command.concurrency }, loop));
  }
  await Promise.all(pending);
  for (const channel of channels) channel.close();
  channels = [];
  const results: UnaryResults = {
    histogram: encodeHistogram(histogram),
    buckets,
    ok,
    statusCodes,
    errors,
    sent,
    skipped,
    exhausted,
    lagP99Ms: lag.getValueAtPercentile(99) / 1000,
  };
  histogram.destroy();
  lag.destroy();
  return results;
}

parentPort!.on("message", (request: UnaryRequest) => {
  const reply = (message: UnaryReply): void => parentPort!.postMessage(message);
  if (request.kind === "close") {
    for (const channel of channels) channel.close();
    reply({ id: request.id, ok: true, value: null });
    return;
  }
  run(request).then(
    (value) => reply({ id: request.id, ok: true, value }),
    (error: unknown) => reply({ id: request.id, ok: false, error: error instanceof Error ? (error.stack ?? error.message) : String(error) }),
  );
});
