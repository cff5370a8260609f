/**
 * The store behind a work queue (store/work-queue.ts): first come, first served on the real
 * drivers, and a call that waits too long is answered SERVICE_UNAVAILABLE having changed nothing.
 */
import { expect, it } from "vitest";
import { PgContextStore } from "../../src/store/context-store.js";
import { WorkQueue } from "../../src/store/work-queue.js";
import { caught } from "../support/app-error-assertions.js";
import { makeContext, withoutState } from "../support/context-fixtures.js";
import { describeOnStores } from "../support/databases.js";
import { applied, creation, revision } from "../support/store-seeding.js";

await describeOnStores("the work queue in front of the store", (under) => {
  const queued = (maxWaitMs: number) => {
    const queue = new WorkQueue({ concurrency: 1, maxWaitMs });
    return { queue, store: new PgContextStore(under.database(), { queue }) };
  };

  it("turns away a call that waits past the queue timeout, runs nothing of it, and serves the next", async () => {
    const { queue, store } = queued(100);
    const held = makeContext();
    applied(await store.apply({}, creation(held)));
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let entered!: () => void;
    const inside = new Promise<void>((resolve) => (entered = resolve));
    const holding = store.transaction({}, async (tx) => {
      const { base } = await tx.lockBase({ contextId: held.contextId, withState: false, agents: [] });
      entered();
      await gate;
      return tx.finish(revision(base!.context, { name: "renamed" }));
    });
    await inside;
    const turnedAway = makeContext();
    const error = await caught(store.apply({}, creation(turnedAway)));
    expect(error.reason).toBe("SERVICE_UNAVAILABLE");
    expect(error.retryDelayMs).toBe(100);
    const batch = await caught(store.applyAll({}, [revision(withoutState(held), { name: "never" })]));
    expect(batch.reason).toBe("SERVICE_UNAVAILABLE");
    expect(queue.rejected).toBe(2);
    release();
    applied(await holding);
    expect(await store.getContext({}, held.contextId, { withState: false })).toMatchObject({ name: "renamed", revision: 2 });
    expect(await store.getContext({}, turnedAway.contextId, { withState: false })).toBeNull();
  });

  it("serves many callers one at a time in arrival order, deadlines and all", async () => {
    const { queue, store } = queued(10_000);
    const all = Array.from({ length: 20 }, () => makeContext());
    const finished: string[] = [];
    await Promise.all(
      all.map((c) =>
        store.transaction({ deadline: Date.now() + 10_000 }, async (tx) => {
          applied(await tx.finish(creation(c)));
          finished.push(c.contextId);
        }),
      ),
    );
    expect(finished).toEqual(all.map((c) => c.contextId));
    expect([queue.active, queue.waiting, queue.rejected]).toEqual([0, 0, 0]);
  });
});
