/**
 * Watch (many watches on one stream) over the wire, on PGlite and on Postgres: `created` before a
 * watch's first message, every response named by its watch_id, a cancel answered `canceled` OK
 * while its neighbours go on, refused creates (bad field, no READ, compacted start, an id in use,
 * the per-stream and per-principal limits) answered `canceled` with WatchContext's code and reason
 * and never ending the stream, CONTEXT_DELETED as a `canceled` OK after the event, a malformed
 * request ending the stream INVALID_ARGUMENT, a half-closed stream serving its watches on, and
 * concurrent writers under watches that are cancelled and re-created mid-run: the validator
 * passes on every watch. A graceful shutdown ends the stream itself UNAVAILABLE.
 */
import { status } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { Visibility } from "../../gen/mplp/context/v1/context_pb.js";
import { ContextService } from "../../gen/mplp/context/v1/context_service_pb.js";
import { createClient } from "../../src/transport/grpc-client.js";
import { assertWatchStreams, type RecordedStream } from "../support/watch-validator.js";
import { describeOnApps, startTestApp } from "./support/app.js";
import { as, createContext, type ContextClient } from "./support/participants.js";
import { eventLog, watchAs } from "./support/watch.js";
import { watchStreamAs, type WatchStreamRecording } from "./support/watch-many.js";

const PER_STREAM = 6;
const PER_PRINCIPAL = 9;

/** A change of the context: one revision with one event. */
async function touch(client: ContextClient, contextId: string, text: string): Promise<number> {
  const { context } = await client.updateContext({ context: { contextId, description: text }, updateMask: { paths: ["description"] } }, as("alice"));
  return Number(context!.revision);
}

/** No watch of the stream got a response before its `created` or after its `canceled`. */
function expectInOrder(stream: WatchStreamRecording): void {
  for (const watch of [...stream.past, ...stream.watches.values()]) expect(watch.outOfOrder, `watch ${watch.id}`).toEqual([]);
}

await describeOnApps(
  "Watch: many watches on one stream",
  (under) => {
    const client = (): ContextClient => under.client(ContextService);

    it("answers created first, then each watch's snapshot and revisions under its own watch_id", async () => {
      const c = client();
      const a = (await createContext(c, "alice", "many a")).contextId;
      const b = (await createContext(c, "alice", "many b")).contextId;
      await touch(c, b, "b at 2");
      const s = watchStreamAs(c, "alice");
      s.create({ watchId: 7n, contextId: a, sendSnapshot: true });
      s.create({ watchId: 9n, contextId: b, startRevision: 1n });
      await s.untilCreated(7n);
      await s.untilRevision(9n, 2);
      expect(s.of(7n).snapshotRevision).toBe(1);
      const headA = await touch(c, a, "a at 2");
      const headB = await touch(c, b, "b at 3");
      await s.untilRevision(7n, headA);
      await s.untilRevision(9n, headB);
      expect(s.of(7n).messages.map((m) => m.revision)).toEqual([2]);
      expect(s.of(9n).messages.map((m) => m.revision)).toEqual([1, 2, 3]);
      expectInOrder(s);
      expect(await s.cancelStream()).toEqual({ kind: "cancelled" });
    });

    it("gives ids 1, 2, 3… to creates that name none, in the order they were sent", async () => {
      const c = client();
      const ids = await Promise.all([0, 1, 2].map(async (i) => (await createContext(c, "alice", `auto ${i}`)).contextId));
      const s = watchStreamAs(c, "alice");
      for (const contextId of ids) s.create({ contextId, startRevision: 1n });
      for (const [i] of ids.entries()) await s.untilRevision(BigInt(i + 1), 1);
      expect([1n, 2n, 3n].map((id) => s.of(id).messages[0]!.eventIds.length)).toEqual([1, 1, 1]);
      const logs = await Promise.all(ids.map((id) => eventLog(c, id, "alice")));
      expect([1n, 2n, 3n].map((id) => s.of(id).messages[0]!.eventIds[0])).toEqual(logs.map((log) => log[0]!.eventId));
      await s.cancelStream();
    });

    it("cancels one watch with canceled OK; the others go on; a cancel of an unknown id is ignored", async () => {
      const c = client();
      const { contextId } = await createContext(c, "alice", "cancel one");
      const s = watchStreamAs(c, "alice");
      s.create({ watchId: 1n, contextId, startRevision: 1n });
      s.create({ watchId: 2n, contextId, startRevision: 1n });
      await s.untilRevision(2n, 1);
      s.cancel(1n);
      s.cancel(42n);
      const canceled = await s.untilCanceled(1n);
      expect([canceled.code, canceled.reason]).toEqual([status.OK, "CANCELLED"]);
      const head = await touch(c, contextId, "after the cancel");
      await s.untilRevision(2n, head);
      expect(s.of(1n).lastRevision()).toBeLessThan(head);
      expect(s.watches.has(42n)).toBe(false);
      // The id is free again.
      s.create({ watchId: 1n, contextId, startRevision: BigInt(head) });
      await s.untilRevision(1n, head);
      // Cancelled while it is still starting (the cancel is read before its start's reads end).
      s.create({ watchId: 3n, contextId, sendSnapshot: true });
      s.cancel(3n);
      const early = await s.untilCanceled(3n);
      expect([early.code, early.reason]).toEqual([status.OK, "CANCELLED"]);
      expectInOrder(s);
      await s.cancelStream();
    });

    it("refuses bad creates with canceled (WatchContext's code and reason) and keeps the stream", async () => {
      const c = client();
      const open = (await createContext(c, "alice", "open one", { accessControl: { visibility: Visibility.PUBLIC } })).contextId;
      const secret = (await createContext(c, "alice", "secret", { accessControl: { visibility: Visibility.PRIVATE } })).contextId;
      const s = watchStreamAs(c, "mallory");
      s.create({ watchId: 1n, contextId: open, startRevision: 1n });
      await s.untilRevision(1n, 1);
      s.create({ watchId: 2n, contextId: "not-a-uuid", progressIntervalMs: 5 });
      s.create({ watchId: 3n, contextId: secret });
      s.create({ watchId: 1n, contextId: open });
      s.create({ watchId: -4n, contextId: open });
      const bad = await s.untilCanceled(2n);
      expect([bad.code, bad.reason]).toEqual([status.INVALID_ARGUMENT, "VALIDATION_ERROR"]);
      expect(bad.message).toContain("context_id");
      expect(bad.message).toContain("progress_interval_ms");
      const denied = await s.untilCanceled(3n);
      expect([denied.code, denied.reason, denied.metadata["permission"]]).toEqual([status.PERMISSION_DENIED, "FORBIDDEN", "READ"]);
      await s.until("the duplicate id and the negative id refused", (x) => x.order.filter((id) => id === 1n).length >= 3 && x.of(-4n).canceled !== undefined);
      const duplicate = s.of(1n).canceled;
      expect([duplicate?.code, duplicate?.reason, duplicate?.message.includes("in use")]).toEqual([status.INVALID_ARGUMENT, "VALIDATION_ERROR", true]);
      expect(s.of(-4n).canceled?.message).toContain("watch_id");
      // None of it ended the stream.
      expect(s.end).toBeUndefined();
      expect([2n, 3n, -4n].map((id) => s.of(id).created)).toEqual([false, false, false]);
      await s.cancelStream();
    });

    it("limits watches per stream and per principal (WatchContext streams count too), each refusal a canceled RATE_LIMITED", async () => {
      const c = client();
      const { contextId } = await createContext(c, "alice", "limits", { accessControl: { visibility: Visibility.PUBLIC } });
      const first = watchStreamAs(c, "greedy");
      for (let id = 1n; id <= BigInt(PER_STREAM) + 1n; id++) first.create({ watchId: id, contextId });
      const overStream = await first.untilCanceled(BigInt(PER_STREAM) + 1n);
      expect([overStream.code, overStream.reason, overStream.metadata["limit"]]).toEqual([status.RESOURCE_EXHAUSTED, "RATE_LIMITED", String(PER_STREAM)]);
      for (let id = 1n; id <= BigInt(PER_STREAM); id++) await first.untilCreated(id);
      // A WatchContext stream takes one more of the principal's watches.
      const single = watchAs(c, "greedy", { contextId, progressIntervalMs: 100 });
      await single.until("its first progress", (w) => w.progress.length > 0);
      const second = watchStreamAs(c, "greedy");
      const left = PER_PRINCIPAL - PER_STREAM - 1;
      for (let id = 1n; id <= BigInt(left) + 1n; id++) second.create({ watchId: id, contextId });
      const overPrincipal = await second.untilCanceled(BigInt(left) + 1n);
      expect([overPrincipal.code, overPrincipal.reason, overPrincipal.metadata["limit"]]).toEqual([status.RESOURCE_EXHAUSTED, "RATE_LIMITED", String(PER_PRINCIPAL)]);
      // Cancelling one gives its slot back.
      first.cancel(1n);
      await first.untilCanceled(1n);
      second.create({ watchId: 99n, contextId });
      await second.untilCreated(99n);
      await Promise.all([first.cancelStream(), second.cancelStream(), single.cancel()]);
    });

    it("ends a watch with CONTEXT_DELETED (code OK) after the event, and only that watch", async () => {
      const c = client();
      const doomed = (await createContext(c, "alice", "doomed")).contextId;
      const kept = (await createContext(c, "alice", "kept")).contextId;
      const s = watchStreamAs(c, "alice");
      s.create({ watchId: 1n, contextId: doomed, startRevision: 1n });
      s.create({ watchId: 2n, contextId: kept, startRevision: 1n });
      await s.untilRevision(1n, 1);
      await c.deleteContext({ contextId: doomed, force: true }, as("alice"));
      const end = await s.untilCanceled(1n);
      expect([end.code, end.reason, end.message]).toEqual([status.OK, "CONTEXT_DELETED", `context ${doomed} was deleted`]);
      expect(s.of(1n).messages.map((m) => m.revision)).toEqual([1, 2]);
      const head = await touch(c, kept, "still watched");
      await s.untilRevision(2n, head);
      expectInOrder(s);
      await s.cancelStream();
    });

    it("ends the stream INVALID_ARGUMENT for a request with neither create nor cancel", async () => {
      const c = client();
      const s = watchStreamAs(c, "alice");
      s.send({});
      const end = await s.ended;
      expect(end.kind === "failed" && [end.error.code, end.error.violations.map((v) => v.field)]).toEqual([status.INVALID_ARGUMENT, ["request"]]);
    });

    it("serves its watches on after the client half-closes, and ends OK once the last one has ended", async () => {
      const c = client();
      const { contextId } = await createContext(c, "alice", "half-closed");
      const s = watchStreamAs(c, "alice");
      s.create({ watchId: 1n, contextId, startRevision: 1n });
      await s.untilRevision(1n, 1);
      s.halfClose();
      const head = await touch(c, contextId, "after the half-close");
      await s.untilRevision(1n, head);
      await c.deleteContext({ contextId, force: true }, as("alice"));
      expect(await s.ended).toEqual({ kind: "ok" });
      expect(s.of(1n).canceled?.reason).toBe("CONTEXT_DELETED");
    });

    it("8 concurrent writers under 3 streams × 5 watches, some cancelled and re-created mid-run: the validator passes on every watch", { timeout: 120_000 }, async () => {
      const c = client();
      const contexts = await Promise.all([0, 1, 2].map(async (i) => (await createContext(c, "alice", `load ${i}`, { accessControl: { visibility: Visibility.PUBLIC } })).contextId));
      // A principal per stream: 15 watches are more than one principal's quota here.
      const streams = [0, 1, 2].map((i) => watchStreamAs(c, `loader-${i}`));
      const specs = streams.flatMap((stream, si) =>
        [1n, 2n, 3n, 4n, 5n].map((id) => ({ stream, si, id, contextId: contexts[(si + Number(id)) % contexts.length]! })),
      );
      for (const w of specs) w.stream.create({ watchId: w.id, contextId: w.contextId, startRevision: 1n });
      await Promise.all(specs.map((w) => w.stream.untilCreated(w.id)));
      const writers = Array.from({ length: 8 }, async (_, wi) => {
        for (let n = 0; n < 12; n++) await touch(c, contexts[(wi + n) % contexts.length]!, `writer ${wi} write ${n}`);
      });
      // Mid-run, watch 2 of every stream is cancelled and re-created from its last revision + 1.
      const recreated = new Map<string, number>();
      const churn = (async () => {
        await specs[0]!.stream.untilRevision(2n, 3);
        for (const w of specs.filter((x) => x.id === 2n)) {
          w.stream.cancel(2n);
          await w.stream.untilCanceled(2n);
          const from = w.stream.of(2n).lastRevision() + 1;
          recreated.set(`${w.si}`, from);
          w.stream.create({ watchId: 2n, contextId: w.contextId, startRevision: BigInt(from) });
        }
      })();
      await Promise.all([...writers, churn]);
      const logs = new Map(await Promise.all(contexts.map(async (id) => [id, await eventLog(c, id, "alice")] as const)));
      const headOf = (id: string): number => logs.get(id)!.at(-1)!.revision;
      await Promise.all(specs.map((w) => w.stream.untilRevision(w.id, headOf(w.contextId))));
      for (const id of contexts) {
        const recorded: RecordedStream[] = [];
        for (const w of specs.filter((x) => x.contextId === id)) {
          const label = `stream ${w.si} watch ${w.id}`;
          if (w.id === 2n) {
            const first = w.stream.past.find((p) => p.id === 2n)!;
            const from = recreated.get(`${w.si}`)!;
            const before = first.recorded(`${label} (first)`, 1, { through: from - 1 });
            recorded.push(before, w.stream.of(2n).recorded(`${label} (re-created)`, from, { resumes: before, through: headOf(id) }));
          } else {
            recorded.push(w.stream.of(w.id).recorded(label, 1, { through: headOf(id) }));
          }
        }
        assertWatchStreams(logs.get(id)!, recorded);
      }
      for (const s of streams) expectInOrder(s);
      await Promise.all(streams.map((s) => s.cancelStream()));
    });
  },
  { env: { WATCH_MAX_PER_STREAM: String(PER_STREAM), WATCH_MAX_PER_PRINCIPAL: String(PER_PRINCIPAL) } },
);

describe("Watch at a graceful shutdown (PGlite)", () => {
  it("ends the stream itself UNAVAILABLE, not watch by watch", async () => {
    const app = await startTestApp({ PGLITE_DATA_DIR: "memory://" });
    const c = createClient(ContextService, `127.0.0.1:${app.port}`);
    try {
      const { contextId } = await createContext(c, "alice", "shutdown");
      const s = watchStreamAs(c, "alice");
      s.create({ watchId: 1n, contextId, startRevision: 1n });
      s.create({ watchId: 2n, contextId });
      await s.untilRevision(1n, 1);
      await s.untilCreated(2n);
      await app.stop();
      const end = await s.ended;
      expect(end.kind === "failed" ? [end.error.code, end.error.reason] : end.kind).toEqual([status.UNAVAILABLE, "SERVICE_UNAVAILABLE"]);
      expect([s.of(1n).canceled, s.of(2n).canceled]).toEqual([undefined, undefined]);
    } finally {
      c.close();
      await app.stop();
    }
  });
});
