/**
 * Replay (issue 16): a watch that resumes far back. One context gets `revisions` commits (a SET
 * of the stamp each, 16 in flight), then a new Watch stream creates one watch from the first of
 * them and times the arrival of the last; three repetitions, each on a fresh stream, the median
 * reported. It is the catch-up path: the watcher reads the log itself, a batch at a time, as fast
 * as its own queue drains.
 */
import { ContextService } from "../../gen/mplp/context/v1/context_service_pb.js";
import { createClient } from "../../src/transport/grpc-client.js";
import type { Cleanup } from "./resources.js";
import { createContexts, PRINCIPAL, startCluster } from "./scenarios.js";
import type { FanoutSettings } from "./settings.js";
import { stampedUpdate, wallClockMs } from "./stamp.js";

export interface ReplayResult {
  readonly revisions: number;
  /** How long writing them took (closed loop, 16 in flight). */
  readonly writeSeconds: number;
  /** Per repetition: create → last revision, create → first revision, revisions per second. */
  readonly reps: ReadonlyArray<{ readonly ms: number; readonly firstMs: number; readonly perSecond: number }>;
  readonly medianPerSecond: number;
}

const WRITERS = 16;
const REPS = 3;

export async function replayScenario(settings: FanoutSettings, cleanup: Cleanup): Promise<ReplayResult> {
  const cluster = await startCluster(1, settings, cleanup);
  const client = createClient(ContextService, cluster.servers[0]!.address);
  const as = { metadata: { "x-principal-id": PRINCIPAL } };
  try {
    const [contextId] = await createContexts(cluster.servers[0]!, 1);
    const revisions = settings.replayRevisions;
    const writeStarted = performance.now();
    let sent = 0;
    await Promise.all(
      Array.from({ length: WRITERS }, async () => {
        while (sent < revisions) {
          sent++;
          await client.updateSharedState(stampedUpdate(contextId!, wallClockMs()), as);
        }
      }),
    );
    const writeSeconds = (performance.now() - writeStarted) / 1000;
    process.stdout.write(`  replay: ${revisions} revisions written in ${writeSeconds.toFixed(1)} s\n`);
    // The context was created at revision 1; the commits are 2 … revisions + 1.
    const last = BigInt(revisions + 1);
    const reps: Array<{ ms: number; firstMs: number; perSecond: number }> = [];
    for (let rep = 0; rep < REPS; rep++) {
      const stop = new AbortController();
      async function* create() {
        yield { request: { case: "create" as const, value: { watchId: 1n, contextId: contextId!, startRevision: 2n } } };
        await new Promise((resolve) => stop.signal.addEventListener("abort", resolve, { once: true }));
      }
      const started = performance.now();
      let firstMs = 0;
      try {
        for await (const { response } of client.watch(create(), { ...as, signal: stop.signal })) {
          if (response.case === "canceled") throw new Error(`the replay watch was canceled: ${response.value.reason} ${response.value.message}`);
          if (response.case !== "events") continue;
          if (firstMs === 0) firstMs = performance.now() - started;
          if (response.value.revision >= last) break;
        }
      } finally {
        stop.abort();
      }
      const ms = performance.now() - started;
      reps.push({ ms: Math.round(ms), firstMs: Math.round(firstMs), perSecond: Math.round(revisions / (ms / 1000)) });
    }
    const sorted = reps.map((r) => r.perSecond).sort((a, b) => a - b);
    return { revisions, writeSeconds: Math.round(writeSeconds * 10) / 10, reps, medianPerSecond: sorted[Math.floor(sorted.length / 2)]! };
  } finally {
    client.close();
    await cluster.stop();
  }
}
