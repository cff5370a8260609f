import { describe, expect, it } from "vitest";
import { AppError } from "../../../src/domain/app-error.js";
import { RateLimiter } from "../../../src/transport/rate-limit.js";
import { WatchQuota } from "../../../src/transport/watch-quota.js";

function refused(take: () => void): AppError | undefined {
  try {
    take();
    return undefined;
  } catch (error) {
    if (error instanceof AppError) return error;
    throw error;
  }
}

describe(RateLimiter.name, () => {
  it("lets a burst through, then refuses with RATE_LIMITED and the delay until the next token", () => {
    let now = 0;
    const limiter = new RateLimiter({ rps: 2, burst: 3, now: () => now });
    for (let i = 0; i < 3; i++) expect(refused(() => limiter.take("alice"))).toBeUndefined();
    const error = refused(() => limiter.take("alice"));
    expect(error?.reason).toBe("RATE_LIMITED");
    expect(error?.retryDelayMs).toBe(500);
    now = 250;
    expect(refused(() => limiter.take("alice"))?.retryDelayMs).toBe(250);
    now = 500;
    expect(refused(() => limiter.take("alice"))).toBeUndefined();
  });

  it("keeps principals apart: one's burst costs another nothing", () => {
    const limiter = new RateLimiter({ rps: 1, burst: 1, now: () => 0 });
    limiter.take("alice");
    expect(refused(() => limiter.take("alice"))?.reason).toBe("RATE_LIMITED");
    expect(refused(() => limiter.take("bob"))).toBeUndefined();
  });

  it("refills no higher than the burst", () => {
    let now = 0;
    const limiter = new RateLimiter({ rps: 10, burst: 2, now: () => now });
    limiter.take("alice");
    now = 60_000;
    limiter.take("alice");
    limiter.take("alice");
    expect(refused(() => limiter.take("alice"))?.reason).toBe("RATE_LIMITED");
  });

  it("forgets the least recently used principal when full", () => {
    const limiter = new RateLimiter({ rps: 1, burst: 1, maxPrincipals: 2, now: () => 0 });
    limiter.take("a");
    limiter.take("b");
    limiter.take("c");
    expect(limiter.size).toBe(2);
    // "a" was forgotten, so it starts over with a full bucket; "c" was not.
    expect(refused(() => limiter.take("a"))).toBeUndefined();
    expect(refused(() => limiter.take("c"))?.reason).toBe("RATE_LIMITED");
  });

  it("limits nothing with rps 0", () => {
    const limiter = new RateLimiter({ rps: 0, burst: 1 });
    for (let i = 0; i < 100; i++) limiter.take("alice");
    expect(limiter.enabled).toBe(false);
    expect(limiter.size).toBe(0);
  });
});

describe(WatchQuota.name, () => {
  it("allows maxPerPrincipal open watches per principal, and one more after a release", () => {
    const quota = new WatchQuota(2);
    const first = quota.acquire("alice");
    quota.acquire("alice");
    expect(refused(() => quota.acquire("alice"))?.reason).toBe("RATE_LIMITED");
    expect(refused(() => quota.acquire("bob"))).toBeUndefined();
    first();
    first(); // twice is once
    expect(quota.openOf("alice")).toBe(1);
    expect(refused(() => quota.acquire("alice"))).toBeUndefined();
  });

  it("take and give count the same slots as acquire, without a closure per slot", () => {
    const quota = new WatchQuota(2);
    quota.take("alice");
    const other = quota.acquire("alice");
    expect(refused(() => quota.take("alice"))?.reason).toBe("RATE_LIMITED");
    quota.give("alice");
    expect(quota.openOf("alice")).toBe(1);
    other();
    expect(quota.openOf("alice")).toBe(0);
  });
});
