import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { CANCEL_RETRIES, CANCEL_RETRY_MS, cancelAtDeadline } from "../../../src/store/sql-client.js";

/**
 * A stand-in for postgres.js's pending query: a promise with cancel(), whose canceller — postgres.js
 * keeps it in `canceller` and forgets it after one use — counts the CancelRequests. `lost` of them
 * reach the backend between two messages and are ignored, as Postgres does.
 */
function statement(lost: number) {
  let settle!: () => void;
  const promise = new Promise<unknown[]>((resolve) => (settle = () => resolve([])));
  const sent = { count: 0 };
  const canceller = (): Promise<void> => {
    sent.count++;
    if (sent.count > lost) settle();
    return Promise.resolve();
  };
  const query = Object.assign(promise, {
    canceller: canceller as typeof canceller | null,
    cancel() {
      const c = query.canceller;
      query.canceller = null;
      return c?.();
    },
  });
  return { query, sent, settle };
}

type Pending = Parameters<typeof cancelAtDeadline>[1][number];

describe(cancelAtDeadline.name, () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it("cancels when the deadline passes, and asks again while a lost cancel leaves the statement running", async () => {
    const { query, sent } = statement(2);
    const clear = cancelAtDeadline(Date.now() + 300, [query as unknown as Pending]);
    await vi.advanceTimersByTimeAsync(299);
    expect(sent.count).toBe(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(sent.count).toBe(1);
    await vi.advanceTimersByTimeAsync(CANCEL_RETRY_MS);
    expect(sent.count).toBe(2);
    await vi.advanceTimersByTimeAsync(CANCEL_RETRY_MS);
    // The third reached it: the statement ended, and nothing more is sent.
    expect(sent.count).toBe(3);
    await vi.advanceTimersByTimeAsync(CANCEL_RETRY_MS * 5);
    expect(sent.count).toBe(3);
    clear();
  });

  it("sends nothing for a statement that finished in time, and gives up after CANCEL_RETRIES", async () => {
    const done = statement(0);
    done.settle();
    const clearDone = cancelAtDeadline(Date.now() + 100, [done.query as unknown as Pending]);
    clearDone();
    await vi.advanceTimersByTimeAsync(1_000);
    expect(done.sent.count).toBe(0);

    const stuck = statement(Number.POSITIVE_INFINITY);
    const clear = cancelAtDeadline(Date.now() + 100, [stuck.query as unknown as Pending]);
    await vi.advanceTimersByTimeAsync(100 + CANCEL_RETRY_MS * (CANCEL_RETRIES + 10));
    expect(stuck.sent.count).toBe(1 + CANCEL_RETRIES);
    clear();
  });
});
