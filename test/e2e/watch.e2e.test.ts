/**
 * WatchContext over the wire, on PGlite and on Postgres: snapshot then events, resumption,
 * CONTEXT_DELETED then OK, PERMISSION_DENIED at the start and mid-stream, and 20 concurrent
 * writers × 50 watchers whose streams — and their resumptions from random earlier revisions —
 * pass the watch validator. With a short event retention: a start_revision in the compacted
 * history is OUT_OF_RANGE/REVISION_COMPACTED, and one right after it streams what is retained.
 * A graceful shutdown ends open streams UNAVAILABLE and logs that at info, not as a failure.
 */
import { status } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { Visibility } from "../../gen/mplp/context/v1/context_pb.js";
import { ContextService } from "../../gen/mplp/context/v1/context_service_pb.js";
import { StateOperation } from "../../gen/mplp/context/v1/shared_state_pb.js";
import { valueOut } from "../../src/transport/proto-values.js";
import { ParticipantService } from "../../gen/mplp/context/v1/participant_service_pb.js";
import { assertWatchStreams, type RecordedStream } from "../support/watch-validator.js";
import { createClient } from "../../src/transport/grpc-client.js";
import { describeOnApps, startTestApp } from "./support/app.js";
import { captureLog } from "./support/log-capture.js";
import { as, createContext, eventually, type ContextClient, type ParticipantClient } from "./support/participants.js";
import { describeEnd, eventLog, watchAs, type WatchRecording } from "./support/watch.js";

const describeEndOf = (w: WatchRecording): string => (w.end === undefined ? "still open" : describeEnd(w.end));

/** A change of the context: one revision with one event. */
async function touch(client: ContextClient, contextId: string, text: string): Promise<number> {
  const { context } = await client.updateContext({ context: { contextId, description: text }, updateMask: { paths: ["description"] } }, as("alice"));
  return Number(context!.revision);
}

/** A seeded random, so a failure can be replayed. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0) / 2 ** 32);
}

await describeOnApps("WatchContext", (under) => {
  const client = (): ContextClient => under.client(ContextService);
  const members = (): ParticipantClient => under.client(ParticipantService);

  it("sends the FULL context first, then one message per revision", async () => {
    const c = client();
    const { contextId } = await createContext(c, "alice", "snap", { sharedState: { variables: { plan: { step: 1 } } } });
    await members().batchAddParticipants({ contextId, participants: [{ agentId: "a1" }, { agentId: "a2" }] }, as("alice"));
    const w = watchAs(c, "alice", { contextId, sendSnapshot: true });
    await w.until("the snapshot", (x) => x.snapshotRevision !== undefined);
    expect(w.snapshotRevision).toBe(2);
    const head = await touch(c, contextId, "after the snapshot");
    await members().batchAddParticipants({ contextId, participants: [{ agentId: "b1" }, { agentId: "b2" }, { agentId: "b3" }] }, as("alice"));
    await w.untilRevision(head + 1);
    expect(w.messages.map((m) => [m.revision, m.eventIds.length])).toEqual([
      [3, 1],
      [4, 3],
    ]);
    await w.cancel();
    assertWatchStreams(await eventLog(c, contextId, "alice"), [w.recorded(3, { through: 4 })]);
  });

  it("resumes from start_revision with everything after it, old and new", async () => {
    const c = client();
    const { contextId } = await createContext(c, "alice", "resume");
    for (let i = 0; i < 5; i++) await touch(c, contextId, `before ${i}`);
    const w = watchAs(c, "alice", { contextId, startRevision: 3n });
    const head = await touch(c, contextId, "after");
    await w.untilRevision(head);
    await w.cancel();
    assertWatchStreams(await eventLog(c, contextId, "alice"), [w.recorded(3, { through: head })]);
  });

  it("delivers CONTEXT_DELETED and then ends the stream with OK", async () => {
    const c = client();
    const { contextId } = await createContext(c, "alice", "doomed");
    const w = watchAs(c, "alice", { contextId, startRevision: 1n });
    await w.untilRevision(1);
    await c.deleteContext({ contextId, force: true }, as("alice"));
    const end = await w.ended;
    expect(end).toEqual({ kind: "ok" });
    expect(w.messages.map((m) => m.revision)).toEqual([1, 2]);
  });

  it("refuses a caller without READ, and ends with PERMISSION_DENIED once it is removed from a PRIVATE context", async () => {
    const c = client();
    const { contextId } = await createContext(c, "alice", "private", { accessControl: { visibility: Visibility.PRIVATE } });
    const outsider = watchAs(c, "mallory", { contextId });
    const refused = await outsider.ended;
    expect(refused.kind === "failed" && [refused.error.code, refused.error.reason]).toEqual([status.PERMISSION_DENIED, "FORBIDDEN"]);

    const { participants } = await members().batchAddParticipants({ contextId, participants: [{ agentId: "bob", roles: ["viewer"] }] }, as("alice"));
    const w = watchAs(c, "bob", { contextId, sendSnapshot: true });
    await w.until("the snapshot", (x) => x.snapshotRevision !== undefined);
    await touch(c, contextId, "bob still reads this");
    await members().removeParticipant({ contextId, participantId: participants[0]!.participantId, reason: "bye" }, as("alice"));
    const end = await w.ended;
    expect(end.kind === "failed" && [end.error.code, end.error.reason]).toEqual([status.PERMISSION_DENIED, "FORBIDDEN"]);
    // The removal itself is delivered before the stream ends.
    assertWatchStreams(await eventLog(c, contextId, "alice"), [w.recorded(w.snapshotRevision! + 1, { through: w.snapshotRevision! + 2 })]);
  });

  it("names a bad progress_interval_ms", async () => {
    const c = client();
    const { contextId } = await createContext(c, "alice", "bad interval");
    const end = await watchAs(c, "alice", { contextId, progressIntervalMs: 5 }).ended;
    expect(end.kind === "failed" && [end.error.code, end.error.violations.map((v) => v.field)]).toEqual([
      status.INVALID_ARGUMENT,
      ["progress_interval_ms"],
    ]);
  });

  it("20 concurrent writers × 50 watchers, then each resumes from a random earlier revision: the validator passes", { timeout: 120_000 }, async () => {
    const c = client();
    const p = members();
    const rand = random(0x5eed);
    const contexts = await Promise.all(
      [0, 1, 2, 3].map(async (i) => (await createContext(c, "alice", `load ${i}`, { configuration: { maxParticipants: 1000 } })).contextId),
    );
    // Every watcher is registered before the first write: a snapshot, a progress or a first event shows it.
    const watchers = Array.from({ length: 50 }, (_, i) => {
      const contextId = contexts[i % contexts.length]!;
      const mode = i % 3;
      const request = mode === 0 ? { contextId, sendSnapshot: true } : mode === 1 ? { contextId, startRevision: 1n } : { contextId, progressIntervalMs: 100 };
      return { contextId, from: mode === 2 ? 2 : mode === 0 ? undefined : 1, stream: watchAs(c, "alice", request, `watcher ${i} (${contextId})`) };
    });
    await Promise.all(
      watchers.map((w) => w.stream.until("its start", (x) => x.snapshotRevision !== undefined || x.progress.length > 0 || x.messages.length > 0)),
    );

    const writers = Array.from({ length: 20 }, async (_, wi) => {
      for (let n = 0; n < 15; n++) {
        const contextId = contexts[Math.floor(rand() * contexts.length)]!;
        // Every fifth write is one revision of three events: atomicity has something to split.
        if (n % 5 === 4) {
          const agents = [0, 1, 2].map((k) => ({ agentId: `w${wi}-${n}-${k}` }));
          await p.batchAddParticipants({ contextId, participants: agents }, as("alice"));
        } else {
          await touch(c, contextId, `writer ${wi} write ${n}`);
        }
      }
    });
    await Promise.all(writers);
    const logs = new Map(await Promise.all(contexts.map(async (id) => [id, await eventLog(c, id, "alice")] as const)));
    const headOf = (id: string): number => logs.get(id)!.at(-1)!.revision;
    await Promise.all(watchers.map((w) => w.stream.untilRevision(headOf(w.contextId))));
    for (const w of watchers) await w.stream.cancel();

    // Resume each from a random revision it has already seen (or the one right after), while a few more writes land.
    const resumed = watchers.map((w, i) => {
      const seen = w.stream.messages.map((m) => m.revision);
      const startRevision = seen[Math.floor(rand() * (seen.length + 1))] ?? seen.at(-1)! + 1;
      return { ...w, startRevision, stream: watchAs(c, "alice", { contextId: w.contextId, startRevision: BigInt(startRevision) }, `resumed ${i}`), first: w.stream };
    });
    await Promise.all(contexts.map((id, i) => touch(c, id, `after the resumption ${i}`)));
    const finalLogs = new Map(await Promise.all(contexts.map(async (id) => [id, await eventLog(c, id, "alice")] as const)));
    await Promise.all(resumed.map((w) => w.stream.untilRevision(finalLogs.get(w.contextId)!.at(-1)!.revision)));
    for (const w of resumed) await w.stream.cancel();

    for (const id of contexts) {
      const streams: RecordedStream[] = [];
      for (const w of resumed.filter((x) => x.contextId === id)) {
        const from = w.from ?? w.first.snapshotRevision! + 1;
        const first = w.first.recorded(from, { through: headOf(id) });
        streams.push(first, w.stream.recorded(w.startRevision, { resumes: first, through: finalLogs.get(id)!.at(-1)!.revision }));
      }
      assertWatchStreams(finalLogs.get(id)!, streams);
    }
    for (const w of resumed) expect(w.stream.end, describeEndOf(w.stream)).toEqual({ kind: "cancelled" });
  });
});

const RETENTION = 10;

await describeOnApps(
  "WatchContext from compacted history",
  (under) => {
    const client = (): ContextClient => under.client(ContextService);

    it("refuses a start_revision at or below compact_revision with OUT_OF_RANGE/REVISION_COMPACTED, and streams from compact_revision + 1", async () => {
      const c = client();
      const { contextId } = await createContext(c, "alice", "compacted");
      // 30 more revisions: state changes, description changes, and every tenth a three-event join.
      let head = 1;
      for (let i = 0; i < 30; i++) {
        if (i % 10 === 9) {
          const agents = [0, 1, 2].map((k) => ({ agentId: `a${i}-${k}` }));
          await under.client(ParticipantService).batchAddParticipants({ contextId, participants: agents }, as("alice"));
          head++;
        } else if (i % 2 === 0) {
          const res = await c.updateSharedState({ contextId, changes: [{ operation: StateOperation.SET, path: `k${i % 4}`, value: valueOut(i) }] }, as("alice"));
          head = Number(res.revision);
        } else {
          head = await touch(c, contextId, `change ${i}`);
        }
      }
      expect(head).toBe(31);
      // The sweeper compacts in slices (once more than retention + retention/10 revisions are kept), so with
      // retention 10 it settles at compact_revision head - 11 or head - 10; poll until it has. The retained
      // log starts right after compact_revision: every revision has at least one event.
      const log = await eventually("the history is compacted to its settled point", async () => {
        const events = await eventLog(c, contextId, "alice");
        return (events[0]?.revision ?? 0) >= head - RETENTION ? events : undefined;
      });
      const compactRevision = log[0]!.revision - 1;
      expect(head - compactRevision).toBeGreaterThanOrEqual(RETENTION);
      expect(log.at(-1)?.revision).toBe(head);

      for (const startRevision of [1, compactRevision - 1, compactRevision]) {
        const end = await watchAs(c, "alice", { contextId, startRevision: BigInt(startRevision) }).ended;
        expect(end.kind === "failed" && [end.error.code, end.error.reason, end.error.metadata["compact_revision"]], `start_revision ${startRevision}: ${describeEnd(end)}`).toEqual([
          status.OUT_OF_RANGE,
          "REVISION_COMPACTED",
          String(compactRevision),
        ]);
      }

      const w = watchAs(c, "alice", { contextId, startRevision: BigInt(compactRevision + 1) }, "from compact_revision + 1");
      await w.untilRevision(head);
      // It stays live: two more revisions arrive (their events are read before compaction can reach them).
      const more = [await touch(c, contextId, "after the compaction"), await touch(c, contextId, "and again")];
      await w.untilRevision(more.at(-1)!);
      await w.cancel();
      expect(w.end, describeEndOf(w)).toEqual({ kind: "cancelled" });
      // The log read before (history never changes) and what was appended since: compaction may have moved on meanwhile.
      const later = await c.listContextEvents({ contextId, startRevision: BigInt(head + 1), pageSize: 100 }, as("alice"));
      const fullLog = [...log, ...later.events.map((e) => ({ revision: Number(e.revision), eventId: e.eventId }))];
      expect(fullLog.at(-1)?.revision).toBe(more.at(-1));
      expect(w.messages[0]?.revision).toBe(compactRevision + 1);
      assertWatchStreams(fullLog, [w.recorded(compactRevision + 1, { through: more.at(-1)! })]);
    });
  },
  { env: { EVENT_RETENTION_REVISIONS: String(RETENTION), SWEEP_INTERVAL_MS: "50" } },
);

describe("WatchContext at a graceful shutdown (PGlite)", () => {
  it("ends the open streams UNAVAILABLE (resume elsewhere) and logs them at info, not as failed calls", async () => {
    const log = captureLog();
    const app = await startTestApp({ PGLITE_DATA_DIR: "memory://" }, log.logger);
    const c = createClient(ContextService, `127.0.0.1:${app.port}`);
    try {
      const { contextId } = await createContext(c, "alice", "shutdown");
      const watch = watchAs(c, "alice", { contextId, startRevision: 1n });
      await watch.untilRevision(1);
      await app.stop();
      const end = await watch.ended;
      expect(end.kind === "failed" ? [end.error.code, end.error.reason] : end.kind).toEqual([status.UNAVAILABLE, "SERVICE_UNAVAILABLE"]);
    } finally {
      c.close();
      await app.stop();
    }
    const entries = log.entries();
    const watchLines = entries.filter((e) => String(e["method"]).endsWith("/WatchContext"));
    expect(watchLines).toEqual([expect.objectContaining({ level: 30, code: "UNAVAILABLE", msg: "stream ended: server shutting down" })]);
    expect(entries.filter((e) => Number(e["level"]) >= 50)).toEqual([]);
  });
});
