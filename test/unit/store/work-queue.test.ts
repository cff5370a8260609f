import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { AppError } from "../../../src/domain/app-error.js";
import { WorkQueue } from "../../../src/store/work-queue.js";

/** A unit of work that runs until released, recording when it started. */
function gate(started: string[], name: string): { work: () => Promise<string>; release: () => void } {
  let release!: () => void;
  const done = new Promise<void>((resolve) => (release = resolve));
  return {
    work: async () => {
      started.push(name);
      await done;
      return name;
    },
    release: () => release(),
  };
}

describe(WorkQueue.name, () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("runs at most `concurrency` operations at once, the rest in arrival order", async () => {
    const queue = new WorkQueue({ concurrency: 2, maxWaitMs: 1_000 });
    const started: string[] = [];
    const gates = ["a", "b", "c", "d"].map((name) => gate(started, name));
    const results = gates.map((g) => queue.run(undefined, g.work));
    await vi.advanceTimersByTimeAsync(0);
    expect(started).toEqual(["a", "b"]);
    expect([queue.active, queue.waiting]).toEqual([2, 2]);
    gates[1]!.release();
    await vi.advanceTimersByTimeAsync(0);
    expect(started).toEqual(["a", "b", "c"]);
    gates[0]!.release();
    await vi.advanceTimersByTimeAsync(0);
    expect(started).toEqual(["a", "b", "c", "d"]);
    gates[2]!.release();
    gates[3]!.release();
    await expect(Promise.all(results)).resolves.toEqual(["a", "b", "c", "d"]);
    expect([queue.active, queue.waiting, queue.rejected]).toEqual([0, 0, 0]);
  });

  it("turns a call away with SERVICE_UNAVAILABLE and a retry delay after maxWaitMs, without running it", async () => {
    const queue = new WorkQueue({ concurrency: 1, maxWaitMs: 500 });
    const started: string[] = [];
    const first = gate(started, "first");
    const running = queue.run(undefined, first.work);
    const waiting = queue.run(undefined, async () => "never");
    const outcome = waiting.catch((error: unknown) => error);
    await vi.advanceTimersByTimeAsync(499);
    expect(queue.waiting).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    const error = (await outcome) as AppError;
    expect(error).toBeInstanceOf(AppError);
    expect(error.reason).toBe("SERVICE_UNAVAILABLE");
    expect(error.retryDelayMs).toBe(500);
    expect([queue.waiting, queue.rejected]).toEqual([0, 1]);
    // The slot goes to the next caller still waiting, not to the one that left.
    const later = queue.run(undefined, async () => "later");
    first.release();
    await vi.advanceTimersByTimeAsync(0);
    await expect(running).resolves.toBe("first");
    await expect(later).resolves.toBe("later");
    expect(started).toEqual(["first"]);
  });

  it("fails with TIMEOUT when the call's deadline comes before maxWaitMs", async () => {
    const queue = new WorkQueue({ concurrency: 1, maxWaitMs: 1_000 });
    const first = gate([], "first");
    const running = queue.run(undefined, first.work);
    const waiting = queue.run(Date.now() + 200, async () => "never").catch((error: unknown) => error);
    await vi.advanceTimersByTimeAsync(200);
    expect(((await waiting) as AppError).reason).toBe("TIMEOUT");
    expect(queue.rejected).toBe(0);
    first.release();
    await running;
  });

  it("with yieldFirst, starts even an uncontended operation from the event loop, not the caller's microtasks", async () => {
    const queue = new WorkQueue({ concurrency: 1, maxWaitMs: 1_000, yieldFirst: true });
    const started: string[] = [];
    const done = queue.run(undefined, async () => started.push("work"));
    // However many microtasks pass, the work waits for the loop.
    for (let i = 0; i < 20; i++) await Promise.resolve();
    expect(started).toEqual([]);
    await vi.advanceTimersByTimeAsync(0);
    expect(started).toEqual(["work"]);
    await done;
  });

  it("frees the slot when the work fails, and passes the failure on", async () => {
    const queue = new WorkQueue({ concurrency: 1, maxWaitMs: 1_000 });
    await expect(queue.run(undefined, async () => Promise.reject(new Error("boom")))).rejects.toThrow("boom");
    await expect(queue.run(undefined, async () => "next")).resolves.toBe("next");
    expect(queue.active).toBe(0);
  });
});
