/**
 * Rings that carry a revision's events (another instance's commit, through Redis): the hub hands
 * them to the feed as it does its own commits, so its watchers get the revision without a read
 * of the log; events that do not decode, belong to another context or leave a gap are read
 * instead. And the wire form itself: read back on the other side exactly as the log would be.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Caller } from "../../../src/service/caller.js";
import { ContextService } from "../../../src/service/context-service.js";
import { WatchHub } from "../../../src/service/watch-hub.js";
import type { StoreCall } from "../../../src/service/ports.js";
import { committedEvents, eventsFromWire, MAX_WIRE_CHARS } from "../../../src/store/committed-events.js";
import { parseRing } from "../../../src/store/redis-doorbell.js";
import { RecordingSink, rejectionOf, RingingStore, waitUntil } from "./watch-support.js";

const alice: Caller = { principal: "alice" };

/** A doorbell whose rings the test makes, events and all. */
class HandDoorbell {
  private readonly listeners = new Set<(contextId: string, revision: number, events?: string) => void>();
  subscribe(listener: (contextId: string, revision: number, events?: string) => void): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }
  ring(contextId: string, revision: number, events?: string): void {
    for (const listener of this.listeners) listener(contextId, revision, events);
  }
}

/** The store, counting the log reads the hub makes. */
class CountingStore extends RingingStore {
  reads = 0;
  override async listEvents(...args: Parameters<RingingStore["listEvents"]>) {
    this.reads++;
    return super.listEvents(...args);
  }
}

describe("rings that carry their events", () => {
  let store: CountingStore;
  let contexts: ContextService;
  let doorbell: HandDoorbell;
  let hub: WatchHub;
  let contextId: string;

  beforeEach(async () => {
    store = new CountingStore();
    store.ringing = false;
    contexts = new ContextService(store, { now: () => new Date() });
    doorbell = new HandDoorbell();
    hub = new WatchHub(store, doorbell, { queueRevisions: 100, reconcileMs: 60_000, decodeEvents: eventsFromWire });
    contextId = (await contexts.create(alice, { context: { name: "rung", type: "COLLABORATIVE" }, requestId: "" })).contextId;
  });

  afterEach(async () => {
    await hub.close();
  });

  /** A commit "on another instance": written to the store, nobody told; returns its revision and wire form. */
  async function commitElsewhere(description: string): Promise<{ revision: number; wire: string }> {
    const c = await contexts.update(alice, { contextId, patch: { description }, updateMask: ["description"], expectedRevision: 0 });
    const appended = store.eventsOf(contextId).filter((e) => e.revision === c.revision);
    return { revision: c.revision, wire: committedEvents(appended).wire(contextId)! };
  }

  async function liveWatcher(): Promise<{ sink: RecordingSink; done: Promise<void> }> {
    const sink = new RecordingSink();
    const done = hub.watch(alice, { contextId, startRevision: 0, sendSnapshot: false, progressIntervalMs: 100 }, sink);
    await waitUntil(() => hub.watcherCount === 1, "the watcher to join");
    return { sink, done };
  }

  it("delivers another instance's revision from the ring's events, reading nothing", async () => {
    const { sink, done } = await liveWatcher();
    const readsBefore = store.reads;
    const { revision, wire } = await commitElsewhere("from B");
    doorbell.ring(contextId, revision, wire);
    await waitUntil(() => sink.lastRevision() === revision, `revision ${revision}`);
    expect(store.reads).toBe(readsBefore);
    const delivered = sink.messages.find((m) => m.kind === "events");
    expect(delivered?.kind === "events" && delivered.events).toEqual(await store.listEvents({} as StoreCall, contextId, { revision, seq: 0 }, 10));
    sink.cancel();
    await rejectionOf(done);
  });

  it("reads the log instead when the events do not decode, are another context's, or leave a gap", async () => {
    const { sink, done } = await liveWatcher();
    const first = await commitElsewhere("one");
    doorbell.ring(contextId, first.revision, "not json");
    await waitUntil(() => sink.lastRevision() === first.revision, "the revision, read from the log");
    const second = await commitElsewhere("two");
    const third = await commitElsewhere("three");
    // Only the third's events: a gap after the feed's head, so both are read.
    const reads = store.reads;
    doorbell.ring(contextId, third.revision, third.wire);
    await waitUntil(() => sink.lastRevision() === third.revision, "both revisions");
    expect(store.reads).toBeGreaterThan(reads);
    expect(sink.recorded().map((m) => m.revision)).toEqual([first.revision, second.revision, third.revision]);
    const fourth = await commitElsewhere("four");
    doorbell.ring(contextId, fourth.revision, fourth.wire.replaceAll(contextId, "00000000-0000-4000-8000-000000000000"));
    await waitUntil(() => sink.lastRevision() === fourth.revision, "the fourth, read from the log");
    sink.cancel();
    await rejectionOf(done);
  });

  it("reads the wire form back exactly as the log (and the committing instance's own hand-off) has it", async () => {
    const { wire } = await commitElsewhere("x".repeat(100));
    const appended = store.eventsOf(contextId).filter((e) => e.revision === 2);
    expect(eventsFromWire(wire)).toEqual(committedEvents(appended).of(contextId));
    expect(committedEvents(appended).wire(contextId)!.length).toBeLessThanOrEqual(MAX_WIRE_CHARS);
    // Larger revisions go by the log.
    expect(committedEvents(Array.from({ length: 50 }, () => appended[0]!)).wire(contextId)).toBeUndefined();
  });

  it("parses rings with and without events (events may hold spaces)", () => {
    expect(parseRing("c 5")).toEqual({ contextId: "c", revision: 5 });
    expect(parseRing('c 5 [{"a":"b c"}]')).toEqual({ contextId: "c", revision: 5, events: '[{"a":"b c"}]' });
    expect(parseRing("c x [1]")).toBeNull();
    expect(parseRing("c  [1]")).toBeNull();
  });
});
