/** One watcher's cursor against a hand-driven source: gaps healed from the log, duplicates dropped. */
import { describe, expect, it } from "vitest";
import type { ContextEvent } from "../../../src/domain/event.js";
import { ReadAccess } from "../../../src/service/watch-access.js";
import { groupByRevision, type RevisionRead } from "../../../src/service/watch-revisions.js";
import type { RevisionBatch } from "../../../src/service/watch-types.js";
import { Watcher, type WatchSource } from "../../../src/service/watch-watcher.js";
import { makeContext } from "../../support/context-fixtures.js";
import { assertWatchStreams } from "../../support/watch-validator.js";
import { RecordingSink, rejectionOf, waitUntil } from "./watch-support.js";

const context = makeContext({ owner: "alice" });

function event(revision: number, seq = 0): ContextEvent {
  return {
    contextId: context.contextId,
    revision,
    seq,
    eventId: `e${revision}.${seq}`,
    type: "CONTEXT_UPDATED",
    actor: "alice",
    occurredAt: new Date(),
    reason: "",
    payload: { kind: "context", context },
  };
}

/** A log of revisions 1..n (revision 4 has two events) and a source whose head the test moves. */
class FakeSource implements WatchSource {
  readonly contextId = context.contextId;
  head = 0;
  deleted = false;
  reads: number[] = [];
  readonly log: ContextEvent[] = [];

  constructor(n: number) {
    for (let r = 1; r <= n; r++) this.log.push(event(r), ...(r === 4 ? [event(4, 1)] : []));
  }

  batch(revision: number): RevisionBatch {
    return groupByRevision(this.log.filter((e) => e.revision === revision))[0]!;
  }

  async read(from: number, maxEvents: number): Promise<RevisionRead> {
    this.reads.push(from);
    const rest = this.log.filter((e) => e.revision >= from);
    const groups = groupByRevision(rest.slice(0, Math.max(maxEvents, 1)));
    const atEnd = rest.length <= maxEvents;
    return { revisions: atEnd ? groups : groups.slice(0, Math.max(groups.length - 1, 1)), atEnd };
  }
}

function watcherOn(source: FakeSource, sink: RecordingSink, next: number, capacity = 100): Watcher {
  return new Watcher(source, sink, new ReadAccess("alice", context, null, 0), { capacity, readBatchEvents: 2, onEnd: () => {} }, next, 60_000);
}

const logOf = (source: FakeSource) => source.log.map((e) => ({ revision: e.revision, eventId: e.eventId }));

describe("a watcher", () => {
  it("heals a gap by reading the missing revisions itself, then goes on with the pushes", async () => {
    const source = new FakeSource(8);
    source.head = 2;
    const sink = new RecordingSink();
    const w = watcherOn(source, sink, 3);
    w.start();
    expect(source.reads).toEqual([]); // its cursor is past the feed's head: live at once
    source.head = 6;
    w.offer(source.batch(6)); // 3..5 were never pushed: a gap
    await waitUntil(() => sink.lastRevision() === 8, "the log read to its end");
    expect(source.reads[0]).toBe(3);
    source.head = 8;
    w.offer(source.batch(7));
    w.offer(source.batch(8));
    sink.cancel();
    await rejectionOf(w.done);
    assertWatchStreams(logOf(source), [{ label: "healed", from: 3, messages: sink.recorded(), through: 8 }]);
  });

  it("drops revisions it already has, and never splits one", async () => {
    const source = new FakeSource(5);
    source.head = 1;
    const sink = new RecordingSink();
    const w = watcherOn(source, sink, 2);
    w.start();
    for (const r of [2, 2, 3, 2, 3, 4, 4, 5]) {
      source.head = Math.max(source.head, r);
      w.offer(source.batch(r));
    }
    await waitUntil(() => sink.lastRevision() === 5, "revision 5");
    expect(sink.recorded().map((m) => m.revision)).toEqual([2, 3, 4, 5]);
    expect(sink.recorded()[2]!.eventIds).toEqual(["e4.0", "e4.1"]);
    assertWatchStreams(logOf(source), [{ label: "deduplicated", from: 2, messages: sink.recorded(), through: 5 }]);
    sink.cancel();
    await rejectionOf(w.done);
  });

  it("catches up from behind the feed's head before it takes pushes", async () => {
    const source = new FakeSource(6);
    source.head = 6;
    const sink = new RecordingSink();
    const w = watcherOn(source, sink, 1, 2);
    w.start();
    await waitUntil(() => sink.lastRevision() === 6, "the backlog");
    source.log.push(event(7));
    source.head = 7;
    w.offer(source.batch(7));
    await waitUntil(() => sink.lastRevision() === 7, "the pushed revision");
    assertWatchStreams(logOf(source), [{ label: "caught up", from: 1, messages: sink.recorded(), through: 7 }]);
    sink.cancel();
    await rejectionOf(w.done);
  });

  it("ends with REVISION_COMPACTED when the revisions it needs are gone", async () => {
    const source = new FakeSource(6);
    source.log.splice(0, 2); // revisions 1..2 compacted away
    source.head = 6;
    const sink = new RecordingSink();
    const w = watcherOn(source, sink, 1);
    w.start();
    const error = (await rejectionOf(w.done)) as { reason: string; metadata: Record<string, string> };
    expect(error.reason).toBe("REVISION_COMPACTED");
    expect(error.metadata["compact_revision"]).toBe("2");
    expect(sink.recorded()).toEqual([]);
  });
});
