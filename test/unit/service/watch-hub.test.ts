/** The watch hub on the memory store and the in-process doorbell. */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AppError } from "../../../src/domain/app-error.js";
import type { Caller } from "../../../src/service/caller.js";
import { ContextService } from "../../../src/service/context-service.js";
import { ParticipantService } from "../../../src/service/participant-service.js";
import { WatchHub } from "../../../src/service/watch-hub.js";
import type { WatchRequest } from "../../../src/service/watch-types.js";
import { assertWatchStreams } from "../../support/watch-validator.js";
import { RecordingSink, rejectionOf, RingingStore, waitUntil } from "./watch-support.js";

const alice: Caller = { principal: "alice" };
const bob: Caller = { principal: "bob" };

describe(WatchHub.name, () => {
  let store: RingingStore;
  let contexts: ContextService;
  let participants: ParticipantService;
  let hub: WatchHub;
  let contextId: string;

  function startHub(queueRevisions = 100, readBatchEvents = 500): void {
    // Reconcile only when a test calls it: a lost doorbell must stay lost until then.
    hub = new WatchHub(store, store.doorbell, { queueRevisions, reconcileMs: 60_000, readBatchEvents });
  }

  const request = (extra: Partial<WatchRequest> = {}): WatchRequest => ({
    contextId,
    startRevision: 0,
    sendSnapshot: false,
    progressIntervalMs: 0,
    ...extra,
  });

  async function write(n: number): Promise<number> {
    let revision = 0;
    for (let i = 0; i < n; i++) {
      const c = await contexts.update(alice, { contextId, patch: { description: `d${i}` }, updateMask: ["description"], expectedRevision: 0 });
      revision = c.revision;
    }
    return revision;
  }

  const log = () => store.eventsOf(contextId).map((e) => ({ revision: e.revision, eventId: e.eventId }));

  beforeEach(async () => {
    store = new RingingStore();
    contexts = new ContextService(store, { now: () => new Date() });
    participants = new ParticipantService(store, { now: () => new Date() }, { ttlMs: 60_000, activityTimeoutMs: 60_000 });
    contextId = (await contexts.create(alice, { context: { name: "watched", type: "COLLABORATIVE" }, requestId: "" })).contextId;
    startHub();
  });

  afterEach(async () => {
    await hub.close();
  });

  it("sends the snapshot, then every later revision once, in order", async () => {
    await write(3);
    const sink = new RecordingSink();
    const done = hub.watch(alice, request({ sendSnapshot: true }), sink);
    await waitUntil(() => sink.messages.length > 0, "the snapshot");
    const first = sink.messages[0]!;
    expect(first).toMatchObject({ kind: "snapshot", revision: 4 });
    expect(first.kind === "snapshot" && first.context.sharedState).toBeDefined();
    const head = await write(5);
    await waitUntil(() => sink.lastRevision() === head, `revision ${head}`);
    sink.cancel();
    await rejectionOf(done);
    assertWatchStreams(log(), [{ label: "snapshot", from: 5, messages: sink.recorded(), through: head }]);
  });

  it("resumes from an old start_revision, reading the backlog at the pace of its queue while writers go on", async () => {
    startHub(3, 2);
    await write(20);
    const sink = new RecordingSink();
    const done = hub.watch(alice, request({ startRevision: 2 }), sink);
    const head = await write(20);
    await waitUntil(() => sink.lastRevision() === head, `revision ${head}`);
    sink.cancel();
    await rejectionOf(done);
    assertWatchStreams(log(), [{ label: "resumed", from: 2, messages: sink.recorded(), through: head }]);
  });

  it("reads each revision from the store once for all of a context's watchers", async () => {
    const sinks = Array.from({ length: 10 }, () => new RecordingSink());
    const done = sinks.map((s) => hub.watch(alice, request(), s));
    await waitUntil(() => hub.watcherCount === 10, "10 watchers");
    let reads = 0;
    const listEvents = store.listEvents.bind(store);
    store.listEvents = async (...args) => {
      reads++;
      return listEvents(...args);
    };
    const head = await write(1);
    await waitUntil(() => sinks.every((s) => s.lastRevision() === head), "every watcher at the head");
    expect(reads).toBe(1);
    for (const s of sinks) s.cancel();
    await Promise.all(done.map(rejectionOf));
  });

  it("ends a watcher that stops reading with SLOW_CONSUMER and last_revision, while a fast one keeps up", async () => {
    startHub(3);
    const slow = new RecordingSink();
    const fast = new RecordingSink();
    slow.pause();
    const slowDone = hub.watch(alice, request({ startRevision: 2 }), slow);
    const fastDone = hub.watch(alice, request({ startRevision: 2 }), fast);
    const head = await write(12);
    const error = (await rejectionOf(slowDone)) as AppError;
    expect(error).toBeInstanceOf(AppError);
    expect(error.reason).toBe("SLOW_CONSUMER");
    // It was stuck writing its first revision: the client resumes right after it.
    expect(error.metadata["last_revision"]).toBe(String(slow.lastRevision()));
    await waitUntil(() => fast.lastRevision() === head, `the fast watcher at ${head}`);
    expect(hub.watcherCount).toBe(1);
    fast.cancel();
    await rejectionOf(fastDone);
    assertWatchStreams(log(), [
      { label: "fast", from: 2, messages: fast.recorded(), through: head },
      { label: "slow", from: 2, messages: slow.recorded() },
    ]);
  });

  it("frees the watcher and its feed when the stream is cancelled", async () => {
    const sink = new RecordingSink();
    const done = hub.watch(alice, request(), sink);
    await waitUntil(() => hub.watcherCount === 1, "the watcher");
    expect(hub.feedCount).toBe(1);
    sink.cancel();
    expect(((await rejectionOf(done)) as Error).name).toBe("AbortError");
    expect(hub.watcherCount).toBe(0);
    expect(hub.feedCount).toBe(0);
  });

  it("makes good a lost doorbell at the next reconcile", async () => {
    const sink = new RecordingSink();
    const done = hub.watch(alice, request(), sink);
    await waitUntil(() => hub.watcherCount === 1, "the watcher");
    store.ringing = false;
    const head = await write(3);
    // Nothing rang: after the event loop turns, the hub still knows nothing.
    await new Promise((resolve) => setImmediate(resolve));
    expect(sink.recorded()).toEqual([]);
    await hub.reconcile();
    await waitUntil(() => sink.lastRevision() === head, `revision ${head} after the reconcile`);
    sink.cancel();
    await rejectionOf(done);
    assertWatchStreams(log(), [{ label: "reconciled", from: 2, messages: sink.recorded(), through: head }]);
  });

  it("delivers CONTEXT_DELETED and then ends OK, also when the doorbell was lost", async () => {
    const rung = new RecordingSink();
    const lost = new RecordingSink();
    const rungDone = hub.watch(alice, request(), rung);
    await waitUntil(() => hub.watcherCount === 1, "the watcher");
    await contexts.delete(alice, { contextId, expectedRevision: 0, force: true });
    await rungDone;
    expect(rung.messages.at(-1)).toMatchObject({ kind: "events", revision: 2, events: [{ type: "CONTEXT_DELETED" }] });

    // A second context, deleted while the doorbell is down: the reconcile finds it gone.
    contextId = (await contexts.create(alice, { context: { name: "other", type: "COLLABORATIVE" }, requestId: "" })).contextId;
    const lostDone = hub.watch(alice, request(), lost);
    await waitUntil(() => hub.watcherCount === 1, "the second watcher");
    store.ringing = false;
    await contexts.delete(alice, { contextId, expectedRevision: 0, force: true });
    await hub.reconcile();
    await lostDone;
    expect(lost.messages.at(-1)).toMatchObject({ kind: "events", events: [{ type: "CONTEXT_DELETED" }] });
    expect(hub.feedCount).toBe(0);
  });

  it("refuses a caller without READ, and ends a stream with FORBIDDEN after the revision that takes READ away", async () => {
    expect(((await rejectionOf(hub.watch(bob, request(), new RecordingSink()))) as AppError).reason).toBe("FORBIDDEN");
    const member = await participants.add(alice, { contextId, participant: { agentId: "bob", roles: ["viewer"] }, requestId: "" });
    const sink = new RecordingSink();
    const done = hub.watch(bob, request(), sink);
    await waitUntil(() => hub.watcherCount === 1, "bob's watcher");
    await write(1);
    await participants.remove(alice, { contextId, participantId: member.participantId, reason: "bye" });
    const error = (await rejectionOf(done)) as AppError;
    expect(error.reason).toBe("FORBIDDEN");
    expect(sink.messages.at(-1)).toMatchObject({ kind: "events", events: [{ type: "PARTICIPANT_LEFT" }] });
    assertWatchStreams(log(), [{ label: "bob", from: 3, messages: sink.recorded() }]);
  });

  it("names a bad progress_interval_ms or start_revision", async () => {
    const error = (await rejectionOf(hub.watch(alice, request({ progressIntervalMs: 50, startRevision: -1 }), new RecordingSink()))) as AppError;
    expect(error.reason).toBe("VALIDATION_ERROR");
    expect(error.violations.map((v) => v.field).sort()).toEqual(["progress_interval_ms", "start_revision"]);
  });

  it("sends progress with the last delivered revision when idle", async () => {
    const sink = new RecordingSink();
    const done = hub.watch(alice, request({ progressIntervalMs: 100 }), sink);
    await waitUntil(() => hub.watcherCount === 1, "the watcher");
    const head = await write(1);
    await waitUntil(() => sink.messages.some((m) => m.kind === "progress"), "a progress message");
    expect(sink.messages.find((m) => m.kind === "progress")).toEqual({ kind: "progress", revision: head });
    sink.cancel();
    await rejectionOf(done);
  });

  it("ends every stream with SERVICE_UNAVAILABLE when it closes", async () => {
    const done = hub.watch(alice, request(), new RecordingSink());
    await waitUntil(() => hub.watcherCount === 1, "the watcher");
    await hub.close();
    expect(((await rejectionOf(done)) as AppError).reason).toBe("SERVICE_UNAVAILABLE");
    expect(((await rejectionOf(hub.watch(alice, request(), new RecordingSink()))) as AppError).reason).toBe("SERVICE_UNAVAILABLE");
  });
});
