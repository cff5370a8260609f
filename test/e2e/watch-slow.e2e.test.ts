/**
 * A watcher that stops reading is ended with RESOURCE_EXHAUSTED / SLOW_CONSUMER and last_revision,
 * and resumes from there; a fast watcher of the same context keeps up throughout, and the writers
 * are never held up (they all finish while the slow stream is stuck). A small queue
 * (WATCH_QUEUE_REVISIONS) makes "too far behind" come soon.
 */
import { status } from "@grpc/grpc-js";
import { expect, it } from "vitest";
import { ContextService } from "../../gen/mplp/context/v1/context_service_pb.js";
import { assertWatchStreams } from "../support/watch-validator.js";
import { describeOnApps } from "./support/app.js";
import { as, createContext } from "./support/participants.js";
import { eventLog, watchAs } from "./support/watch.js";

/** Far more than grpc-js and HTTP/2 buffer for a stream (a 64 KiB window plus a few messages), so the hub's queue must overflow. */
const WRITES = 300;
const PADDING = "x".repeat(990);

await describeOnApps(
  "WatchContext with a slow consumer",
  (under) => {
    it("ends the stream that stopped reading with SLOW_CONSUMER while a fast one keeps up", { timeout: 120_000 }, async () => {
      const c = under.client(ContextService);
      const { contextId } = await createContext(c, "alice", "hot");
      const slow = watchAs(c, "alice", { contextId, startRevision: 1n }, "slow");
      const fast = watchAs(c, "alice", { contextId, startRevision: 1n }, "fast");
      slow.pause(); // reads one message, then nothing
      await Promise.all([slow.untilRevision(1), fast.untilRevision(1)]);

      let head = 1;
      for (let i = 0; i < WRITES; i++) {
        const { context } = await c.updateContext(
          { context: { contextId, description: `${i} ${PADDING}` }, updateMask: { paths: ["description"] } },
          as("alice"),
        );
        head = Number(context!.revision);
      }
      await fast.untilRevision(head);
      expect(fast.end).toBeUndefined();

      // The slow client reads again: what was written to it, then the status.
      slow.resume();
      const end = await slow.ended;
      if (end.kind !== "failed") throw new Error(`the slow stream ended ${end.kind}, not with SLOW_CONSUMER`);
      expect([end.error.code, end.error.reason]).toEqual([status.RESOURCE_EXHAUSTED, "SLOW_CONSUMER"]);
      const lastRevision = Number(end.error.metadata["last_revision"]);
      expect(lastRevision).toBe(slow.lastRevision());
      expect(lastRevision).toBeLessThan(head);

      // It resumes right after last_revision and misses nothing.
      const again = watchAs(c, "alice", { contextId, startRevision: BigInt(lastRevision + 1) }, "slow, resumed");
      await again.untilRevision(head);
      await Promise.all([fast.cancel(), again.cancel()]);
      const first = slow.recorded(1);
      assertWatchStreams(await eventLog(c, contextId, "alice"), [
        fast.recorded(1, { through: head }),
        first,
        again.recorded(lastRevision + 1, { resumes: first, through: head }),
      ]);
    });
  },
  { env: { WATCH_QUEUE_REVISIONS: "16" } },
);
