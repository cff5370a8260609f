/**
 * The hand-off of committed events to this instance's own watch hub, on PgContextStore over
 * PGlite: a feed fed by the hand-off must deliver exactly what a feed fed by the database read
 * delivers — the same messages, down to the bytes the transport writes — and must not read.
 */
import { toBinary } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WatchContextResponseSchema } from "../../../gen/mplp/context/v1/context_service_pb.js";
import type { JsonObject } from "../../../src/domain/json.js";
import type { Caller } from "../../../src/service/caller.js";
import { ContextService } from "../../../src/service/context-service.js";
import { ParticipantService } from "../../../src/service/participant-service.js";
import { SharedStateService } from "../../../src/service/shared-state-service.js";
import { WatchFeed } from "../../../src/service/watch-feed.js";
import { WatchHub } from "../../../src/service/watch-hub.js";
import { groupByRevision } from "../../../src/service/watch-revisions.js";
import type { Watcher } from "../../../src/service/watch-watcher.js";
import type { WatchMessage, WatchRequest, WatchStore } from "../../../src/service/watch-types.js";
import { PgContextStore, type CommittedEvents } from "../../../src/store/context-store.js";
import type { Database } from "../../../src/store/database.js";
import { LocalDoorbell } from "../../../src/store/local-doorbell.js";
import { watchResponseOut } from "../../../src/transport/watch-mapper.js";
import { event, makeContext, withoutState } from "../../support/context-fixtures.js";
import { openTestPglite } from "../../support/databases.js";
import { RecordingSink, rejectionOf, waitUntil } from "./watch-support.js";

const alice: Caller = { principal: "alice" };
const clock = { now: () => new Date() };

/** JSON whose in-memory form differs from jsonb's: key order (by length, integer keys), -0, exponents, non-ASCII, "__proto__". */
function awkward(i: number): JsonObject {
  return JSON.parse(
    `{"zeta": ${i}, "a": {"yy": [1, {"b": 2, "aa": -0}], "x": 1e21, "é": "è"}, "10": "ten", "2": 0.1, "__proto__": {"k": 1e-7}, "bb": null, "ä": true}`,
  ) as JsonObject;
}

describe("WatchHub hand-off of committed events", () => {
  let database: Database;
  let store: PgContextStore;
  let handOffHub: WatchHub;
  let readHub: WatchHub;
  let feedReads = 0;
  const committedLog: CommittedEvents[] = [];

  beforeAll(async () => {
    database = await openTestPglite();
    const doorbell = new LocalDoorbell();
    store = new PgContextStore(database, {
      onCommit: (heads, committed) => {
        committedLog.push(committed);
        for (const [contextId, revision] of heads) handOffHub.committed(contextId, revision, () => committed.of(contextId));
        for (const [contextId, revision] of heads) doorbell.ring(contextId, revision);
      },
    });
    // The hand-off hub hears no doorbell and never reconciles on its own: the hand-off is all it gets.
    // Its listEvents calls are counted (the reads of a watcher's start are done by then).
    const counting: WatchStore = {
      getContext: (...a) => store.getContext(...a),
      findMember: (...a) => store.findMember(...a),
      listParticipants: (...a) => store.listParticipants(...a),
      heads: (...a) => store.heads(...a),
      listEvents: (...a) => {
        feedReads++;
        return store.listEvents(...a);
      },
    };
    handOffHub = new WatchHub(counting, { subscribe: () => () => {} }, { queueRevisions: 1_000, reconcileMs: 60_000 });
    readHub = new WatchHub(store, doorbell, { queueRevisions: 1_000, reconcileMs: 60_000 });
  });

  afterAll(async () => {
    await handOffHub.close();
    await readHub.close();
    await database.close();
  });

  it("delivers the same messages, byte for byte, as the database read, without reading", async () => {
    const contexts = new ContextService(store, clock, { sharedStateMaxBytes: 1_000_000 });
    const state = new SharedStateService(store, clock, { maxBytes: 1_000_000, snapshotInterval: 1_000 });
    const participants = new ParticipantService(store, clock, { ttlMs: 60_000, activityTimeoutMs: 60_000 });
    const created = await contexts.create(alice, {
      context: { name: "handed-off", type: "COLLABORATIVE", metadata: { customData: awkward(0) } },
      requestId: "",
    });
    const contextId = created.contextId;
    const request: WatchRequest = { contextId, startRevision: 0, sendSnapshot: false, progressIntervalMs: 0 };
    const byHandOff = new RecordingSink();
    const byRead = new RecordingSink();
    const streams = [handOffHub.watch(alice, request, byHandOff), readHub.watch(alice, request, byRead)];
    await waitUntil(() => handOffHub.watcherCount === 1 && readHub.watcherCount === 1, "both watchers");
    feedReads = 0;

    // Context payloads (customData), state changes (nested values, replaced parts), participants (metadata).
    for (let i = 1; i <= 3; i++) {
      await state.update(alice, {
        contextId,
        changes: [
          { operation: "SET", path: `v${i}`, value: awkward(i) },
          { operation: "SET", path: "plain", value: i },
        ],
        updateMask: [],
        expectedRevision: 0,
        requestId: "",
      });
      await contexts.update(alice, {
        contextId,
        patch: { description: `d${i}`, metadata: { customData: awkward(i) } },
        updateMask: ["description", "metadata.custom_data"],
        expectedRevision: 0,
      });
      await participants.add(alice, { contextId, participant: { agentId: `agent-${i}`, metadata: awkward(i) }, requestId: "" });
    }
    await state.update(alice, { contextId, changes: [{ operation: "DELETE", path: "v1" }], updateMask: [], expectedRevision: 0, requestId: "" });
    const head = (await contexts.get(alice, contextId, undefined)).context.revision;
    await waitUntil(() => byHandOff.lastRevision() === head && byRead.lastRevision() === head, `revision ${head} on both streams`);

    expect(feedReads).toBe(0);
    const events = (m: WatchMessage[]) => m.filter((x) => x.kind === "events");
    const [handed, read] = [events(byHandOff.messages), events(byRead.messages)];
    expect(handed.map((m) => m.revision)).toEqual(read.map((m) => m.revision));
    expect(handed.length).toBe(head - created.revision);
    expect(handed).toEqual(read);
    for (let i = 0; i < handed.length; i++) {
      const bytes = (m: WatchMessage) => Buffer.from(toBinary(WatchContextResponseSchema, watchResponseOut(m))).toString("hex");
      expect(bytes(handed[i]!), `revision ${handed[i]!.revision}`).toBe(bytes(read[i]!));
    }
    // What is handed over is frozen: every watcher of the context shares it.
    const shared = handed[0]!.kind === "events" ? handed[0]!.events[0]! : undefined;
    expect(Object.isFrozen(shared)).toBe(true);
    expect(Object.isFrozen(shared?.payload)).toBe(true);

    byHandOff.cancel();
    byRead.cancel();
    await Promise.all(streams.map(rejectionOf));
  });

  it("reads what the hand-off cannot cover (a gap) and then takes hand-offs again", async () => {
    const contexts = new ContextService(store, clock, { sharedStateMaxBytes: 1_000_000 });
    const contextId = (await contexts.create(alice, { context: { name: "gapped", type: "COLLABORATIVE" }, requestId: "" })).contextId;
    const sink = new RecordingSink();
    const stream = handOffHub.watch(alice, { contextId, startRevision: 0, sendSnapshot: false, progressIntervalMs: 0 }, sink);
    await waitUntil(() => handOffHub.watcherCount === 1, "the watcher");
    const update = (i: number) =>
      contexts.update(alice, { contextId, patch: { description: `d${i}` }, updateMask: ["description"], expectedRevision: 0 });

    // A commit whose hand-off is lost (as another instance's would be): the next hand-off is a gap.
    const lost = committedLog.length;
    const original = handOffHub.committed.bind(handOffHub);
    handOffHub.committed = () => {};
    const skipped = await update(1);
    handOffHub.committed = original;
    expect(committedLog.length).toBe(lost + 1);
    feedReads = 0;
    const after = await update(2);
    await waitUntil(() => sink.lastRevision() === after.revision, `revision ${after.revision}`);
    expect(feedReads).toBeGreaterThan(0);
    expect(sink.recorded().map((m) => m.revision)).toEqual([skipped.revision, after.revision]);

    feedReads = 0;
    const last = await update(3);
    await waitUntil(() => sink.lastRevision() === last.revision, `revision ${last.revision}`);
    expect(feedReads).toBe(0);
    sink.cancel();
    await rejectionOf(stream);
  });
});

describe("WatchFeed.handOff", () => {
  it("pushes only whole revisions that continue its head, skips old ones, and reads the rest", async () => {
    const context = withoutState(makeContext());
    const log = [5, 6, 7].flatMap((r) => [event("c", r, 0, context), event("c", r, 1, context)]);
    let reads = 0;
    const store = {
      listEvents: async (_call: unknown, _id: string, from: { revision: number; seq: number }, limit: number) => {
        reads++;
        return log.filter((e) => e.revision > from.revision || (e.revision === from.revision && e.seq >= from.seq)).slice(0, limit);
      },
    };
    const feed = new WatchFeed(store, "c", 4, 500);
    const offered: number[] = [];
    feed.watchers.add({ offer: (b: { revision: number }) => void offered.push(b.revision) } as unknown as Watcher);
    const revision = (r: number) => log.filter((e) => e.revision === r);

    // At or below the head: nothing to do, nothing read.
    feed.handOff(groupByRevision([event("c", 4, 0, context)]));
    // Revision 5 without its seq 0 is not whole: the feed reads 5 (and on) instead.
    feed.handOff([{ revision: 5, events: [revision(5)[1]!] }]);
    await waitUntil(() => feed.head === 7, "the read to the end of the log");
    expect(reads).toBeGreaterThan(0);
    expect(offered).toEqual([5, 6, 7]);

    // Whole and continuing: pushed at once, without a read; 7 again is skipped.
    log.push(event("c", 8, 0, context), event("c", 9, 0, context));
    reads = 0;
    feed.handOff(groupByRevision([...revision(7), ...revision(8), ...revision(9)]));
    expect(offered).toEqual([5, 6, 7, 8, 9]);
    expect(feed.head).toBe(9);
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(reads).toBe(0);

    // A gap (10 handed over before, or without, 9's successor): read from the head instead.
    log.push(event("c", 10, 0, context), event("c", 11, 0, context));
    feed.handOff(groupByRevision(revision(11)));
    await waitUntil(() => feed.head === 11, "the read over the gap");
    expect(reads).toBeGreaterThan(0);
    expect(offered).toEqual([5, 6, 7, 8, 9, 10, 11]);
  });
});
