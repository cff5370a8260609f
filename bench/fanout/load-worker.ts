/**
 * A load worker thread: it opens watch streams or runs an open-loop writer, as the main thread
 * commands (see protocol.ts), on channels of its own. Several run side by side because one Node
 * thread decoding thousands of messages a second saturates a core long before the server does.
 *
 * Started through tsx's `tsImport` (see workers.ts): tsx's `--import` hooks do not reach worker
 * threads on Node 20.
 */
import * as grpc from "@grpc/grpc-js";
import type { Histogram } from "hdr-histogram-js";
import { parentPort } from "node:worker_threads";
import {
  deserializeUpdateResponse,
  newChannel,
  serializeUpdateRequest,
  serializeWatchManyRequest,
  serializeWatchRequest,
  statusName,
  timedWatchDeserializer,
  timedWatchManyDeserializer,
  UPDATE_STATE_PATH,
  WATCH_MANY_PATH,
  WATCH_PATH,
  type TimedWatchManyResponse,
  type TimedWatchResponse,
} from "./grpc-paths.js";
import { encodeHistogram, newHistogram, recordMs } from "./histogram.js";
import type { OpenResults, WatchAssignment, WatchResults, WatchRpc, WorkerCommand, WorkerReply, WorkerRequest, WriteResults } from "./protocol.js";
import { deliveryOf, stampedUpdate, wallClockMs } from "./stamp.js";
import { OPEN_TIMEOUT_MS, OpenFailure, openTimer } from "./stream-open.js";

/** A commit unanswered for this long fails with DEADLINE_EXCEEDED, so a writer always finishes. */
const COMMIT_DEADLINE_MS = 30_000;

const increment = (counts: Record<string, number>, key: string, by = 1): void => {
  counts[key] = (counts[key] ?? 0) + by;
};

/** Every watch stream of this worker and what they have seen. */
class Watchers {
  private readonly channels: grpc.Client[] = [];
  private readonly calls = new Set<grpc.ClientReadableStream<TimedWatchResponse>>();
  /** Watch streams (rpc "watch"): one per channel, each holding that channel's watches. */
  private readonly muxes = new Set<{ cancel(): void }>();
  /** Open watches of the Watch streams (the count a WatchContext run gets from `calls`). */
  private openWatches = 0;
  private readonly histograms = new Map<string, Histogram>();
  private readonly delivered: Record<string, number> = {};
  private readonly endedByCode: Record<string, number> = {};
  private outsideWindow = 0;
  private repeated = 0;
  private gaps = 0;
  private minBytes = Number.POSITIVE_INFINITY;
  private maxBytes = 0;
  private windowFrom = Number.POSITIVE_INFINITY;
  private windowTo = Number.NEGATIVE_INFINITY;
  private closing = false;
  private readonly deserialize = timedWatchDeserializer(wallClockMs);
  private readonly deserializeMany = timedWatchManyDeserializer(wallClockMs);

  /** Sets the window whose deliveries count; those before (warm-up) and after (drain) do not. */
  window(from: number, to: number): void {
    this.windowFrom = from;
    this.windowTo = to;
  }

  /**
   * Opens a watch per context id listed: with rpc "watch-context" a stream each, at most
   * `streamsPerChannel` per channel; with rpc "watch" one Watch stream per channel holding that
   * many watches. Either way at most `concurrency` are being opened at once.
   */
  async open(assignments: readonly WatchAssignment[], streamsPerChannel: number, concurrency: number, principal: string, rpc: WatchRpc): Promise<OpenResults> {
    const jobs: Array<{ open: () => Promise<void> }> = [];
    for (const assignment of assignments) {
      for (let i = 0; i < assignment.contextIds.length; i += streamsPerChannel) {
        const channel = newChannel(assignment.address);
        this.channels.push(channel);
        const group = assignment.contextIds.slice(i, i + streamsPerChannel);
        if (rpc === "watch") {
          const mux = this.openMux(channel, assignment.server, principal);
          group.forEach((contextId, k) => jobs.push({ open: () => mux.create(BigInt(k + 1), contextId) }));
        } else {
          for (const contextId of group) jobs.push({ open: () => this.openOne(channel, contextId, assignment.server, principal) });
        }
      }
    }
    const failedByCode: Record<string, number> = {};
    let opened = 0;
    let next = 0;
    const lane = async (): Promise<void> => {
      for (let job = jobs[next++]; job !== undefined; job = jobs[next++]) {
        try {
          await job.open();
          opened++;
        } catch (error) {
          increment(failedByCode, error instanceof OpenFailure ? error.code : "UNKNOWN");
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, concurrency) }, lane));
    return { opened, failedByCode };
  }

  /** Opens one stream; resolves on its snapshot (so the stream is registered and live on the server). */
  private openOne(channel: grpc.Client, contextId: string, server: string, principal: string): Promise<void> {
    const metadata = new grpc.Metadata();
    metadata.set("x-principal-id", principal);
    const call = channel.makeServerStreamRequest(WATCH_PATH, serializeWatchRequest, this.deserialize, { contextId, sendSnapshot: true }, metadata, {});
    this.calls.add(call);
    let lastRevision = -1;
    return new Promise<void>((resolve, reject) => {
      let open = false;
      const timer = openTimer(call, reject);
      call.on("data", (response: TimedWatchResponse) => {
        const { message } = response;
        if (message.response.case === "snapshot") {
          lastRevision = Number(message.response.value.revision);
          open = true;
          clearTimeout(timer);
          resolve();
          return;
        }
        lastRevision = this.record(response, server, lastRevision) ?? lastRevision;
      });
      call.on("error", (error: grpc.ServiceError) => {
        clearTimeout(timer);
        this.calls.delete(call);
        if (!open) reject(new OpenFailure(statusName(error.code)));
        else if (!this.closing) increment(this.endedByCode, statusName(error.code));
      });
      call.on("end", () => {
        this.calls.delete(call);
        if (open && !this.closing) increment(this.endedByCode, "OK");
      });
    });
  }

  /**
   * One Watch stream on `channel`; `create(watchId, contextId)` adds a watch from the context's
   * next revision and resolves once it is `created`.
   */
  private openMux(channel: grpc.Client, server: string, principal: string): { create: (watchId: bigint, contextId: string) => Promise<void> } {
    const metadata = new grpc.Metadata();
    metadata.set("x-principal-id", principal);
    const call = channel.makeBidiStreamRequest(WATCH_MANY_PATH, serializeWatchManyRequest, this.deserializeMany, metadata, {});
    this.muxes.add(call);
    const lastRevisions = new Map<bigint, number>();
    const pending = new Map<bigint, { resolve: () => void; reject: (error: OpenFailure) => void; timer: NodeJS.Timeout }>();
    call.on("data", (response: TimedWatchManyResponse) => {
      const { watchId, response: payload } = response.message;
      if (payload.case === "created") {
        // Live from here (the server joins the watch to its context's feed before it says so);
        // no snapshot, as etcd's watchers have none: the first revision sets the cursor.
        lastRevisions.set(watchId, -1);
        this.openWatches++;
        const waiting = pending.get(watchId);
        pending.delete(watchId);
        if (waiting !== undefined) {
          clearTimeout(waiting.timer);
          waiting.resolve();
        }
        return;
      }
      if (payload.case === "canceled") {
        const code = statusName(payload.value.code);
        const waiting = pending.get(watchId);
        pending.delete(watchId);
        if (waiting !== undefined) {
          clearTimeout(waiting.timer);
          waiting.reject(new OpenFailure(code));
        } else if (!this.closing) {
          this.openWatches--;
          increment(this.endedByCode, code);
        }
        return;
      }
      const last = lastRevisions.get(watchId);
      if (last === undefined) return;
      const revision = this.record(response, server, last);
      if (revision !== undefined) lastRevisions.set(watchId, revision);
    });
    call.on("error", (error: grpc.ServiceError) => {
      this.muxes.delete(call);
      for (const waiting of pending.values()) {
        clearTimeout(waiting.timer);
        waiting.reject(new OpenFailure(statusName(error.code)));
      }
      pending.clear();
      if (!this.closing) increment(this.endedByCode, statusName(error.code), lastRevisions.size);
    });
    call.on("end", () => this.muxes.delete(call));
    return {
      create: (watchId, contextId) =>
        new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => {
            pending.delete(watchId);
            reject(new OpenFailure("OPEN_TIMEOUT"));
          }, OPEN_TIMEOUT_MS);
          pending.set(watchId, { resolve, reject, timer });
          call.write({ request: { case: "create", value: { watchId, contextId } } });
        }),
    };
  }

  /**
   * Counts one message of a watch whose last revision was `last`: latency when it is a stamped
   * revision of the window, and repeats or gaps against `last`. Returns the new last revision.
   */
  private record(response: TimedWatchResponse | TimedWatchManyResponse, server: string, last: number): number | undefined {
    const delivery = deliveryOf(response.message);
    if (delivery === undefined) return undefined;
    if (delivery.revision <= last) this.repeated++;
    else if (last >= 0 && delivery.revision > last + 1) this.gaps += delivery.revision - last - 1;
    this.minBytes = Math.min(this.minBytes, response.bytes);
    this.maxBytes = Math.max(this.maxBytes, response.bytes);
    if (delivery.stampMs !== undefined) {
      if (delivery.stampMs >= this.windowFrom && delivery.stampMs < this.windowTo) {
        recordMs(this.histogramOf(server), response.receivedMs - delivery.stampMs);
        increment(this.delivered, server);
      } else {
        this.outsideWindow++;
      }
    }
    return Math.max(last, delivery.revision);
  }

  private histogramOf(server: string): Histogram {
    let histogram = this.histograms.get(server);
    if (histogram === undefined) {
      histogram = newHistogram();
      this.histograms.set(server, histogram);
    }
    return histogram;
  }

  results(): WatchResults {
    const histograms: Record<string, string> = {};
    for (const [server, histogram] of this.histograms) histograms[server] = encodeHistogram(histogram);
    return {
      histograms,
      delivered: { ...this.delivered },
      outsideWindow: this.outsideWindow,
      repeated: this.repeated,
      gaps: this.gaps,
      endedByCode: { ...this.endedByCode },
      payloadBytes: { min: Number.isFinite(this.minBytes) ? this.minBytes : 0, max: this.maxBytes },
      openStreams: this.calls.size + this.openWatches,
    };
  }

  close(): void {
    this.closing = true;
    for (const call of this.calls) call.cancel();
    this.calls.clear();
    for (const call of this.muxes) call.cancel();
    this.muxes.clear();
    for (const channel of this.channels) channel.close();
  }
}

/** Open loop: commits leave on a fixed schedule whatever the server's latency (no coordinated omission). */
async function write(command: Extract<WorkerCommand, { kind: "write" }>): Promise<WriteResults> {
  const channels = Array.from({ length: Math.max(1, command.channels) }, () => newChannel(command.address));
  const commitHistogram = newHistogram();
  const lagHistogram = newHistogram();
  const committedInWindow: Record<string, number> = {};
  const errorsByCode: Record<string, number> = {};
  const intervalMs = 1000 / command.rate;
  const metadata = new grpc.Metadata();
  metadata.set("x-principal-id", command.principal);
  let sent = 0;
  let skipped = 0;
  let inFlight = 0;
  const inWindow = (t: number): boolean => t >= command.measureFromMs && t < command.measureToMs;

  const fire = (n: number, scheduledMs: number, settled: () => void): void => {
    if (inFlight >= command.maxInFlight) {
      skipped++;
      return;
    }
    const contextId = command.contextIds[n % command.contextIds.length]!;
    const channel = channels[n % channels.length]!;
    const stampMs = wallClockMs();
    if (inWindow(stampMs)) recordMs(lagHistogram, stampMs - scheduledMs);
    inFlight++;
    sent++;
    channel.makeUnaryRequest(
      UPDATE_STATE_PATH,
      serializeUpdateRequest,
      deserializeUpdateResponse,
      stampedUpdate(contextId, stampMs),
      metadata,
      { deadline: Date.now() + COMMIT_DEADLINE_MS },
      (error) => {
        inFlight--;
        if (error) increment(errorsByCode, statusName(error.code));
        else if (inWindow(stampMs)) {
          recordMs(commitHistogram, wallClockMs() - stampMs);
          increment(committedInWindow, contextId);
        }
        settled();
      },
    );
  };

  await new Promise<void>((resolve) => {
    let n = 0;
    let scheduling = true;
    const settled = (): void => {
      if (!scheduling && inFlight === 0) resolve();
    };
    const tick = (): void => {
      const now = wallClockMs();
      // Fire everything due: a late timer sends the overdue commits at once (their lag is recorded).
      for (let due = command.startAtMs + n * intervalMs; due <= now && due < command.measureToMs; due = command.startAtMs + n * intervalMs) {
        fire(n, due, settled);
        n++;
      }
      const nextDue = command.startAtMs + n * intervalMs;
      if (nextDue >= command.measureToMs) {
        scheduling = false;
        settled();
        return;
      }
      setTimeout(tick, Math.max(0, nextDue - wallClockMs()));
    };
    setTimeout(tick, Math.max(0, command.startAtMs - wallClockMs()));
  });
  for (const channel of channels) channel.close();
  return {
    commitHistogram: encodeHistogram(commitHistogram),
    lagHistogram: encodeHistogram(lagHistogram),
    committedInWindow,
    sent,
    skipped,
    errorsByCode,
  };
}

const port = parentPort;
if (port === null) throw new Error("load-worker.ts runs as a worker thread (see workers.ts)");
const watchers = new Watchers();

async function handle(command: WorkerCommand): Promise<OpenResults | WriteResults | WatchResults | null> {
  switch (command.kind) {
    case "open-watchers":
      return watchers.open(command.assignments, command.streamsPerChannel, command.openConcurrency, command.principal, command.rpc);
    case "write":
      return write(command);
    case "watch-window":
      watchers.window(command.measureFromMs, command.measureToMs);
      return null;
    case "collect":
      return watchers.results();
    case "close":
      watchers.close();
      return null;
  }
}

port.on("message", (request: WorkerRequest) => {
  handle(request).then(
    (value) => port.postMessage({ id: request.id, ok: true, value } satisfies WorkerReply),
    (error: unknown) => port.postMessage({ id: request.id, ok: false, error: error instanceof Error ? (error.stack ?? error.message) : String(error) } satisfies WorkerReply),
  );
});
