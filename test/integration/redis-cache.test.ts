/**
 * The L2 cache on a real Redis: a copy is served only while its tags are not older than its
 * context's stamp, a fill never replaces a newer copy nor lands after the stamp moved on, an epoch
 * bump disowns everything, messages carried with the stamps (the doorbell's rings) are published
 * after them, and an unreachable Redis is a miss, never an error.
 */
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger, type Logger } from "../../src/logger.js";
import { RedisCache } from "../../src/store/redis-cache.js";
import { adminRedis, deleteKeyPrefix, randomKeyPrefix, redisAvailable, TEST_REDIS_URL } from "../e2e/support/redis.js";

const up = await redisAvailable();

describe.skipIf(!up)(RedisCache.name, () => {
  let admin: Redis;
  const caches: RedisCache[] = [];
  const prefixes: string[] = [];

  beforeAll(async () => {
    admin = adminRedis();
    await admin.connect();
  });

  afterAll(async () => {
    await Promise.all(caches.map((c) => c.close()));
    for (const prefix of prefixes) await deleteKeyPrefix(prefix);
    admin?.disconnect();
  });

  function open(logger: Logger = silentLogger(), url = TEST_REDIS_URL): { cache: RedisCache; prefix: string } {
    const prefix = randomKeyPrefix();
    prefixes.push(prefix);
    const cache = new RedisCache({ url, keyPrefix: prefix, stampTtlMs: 60_000, logger });
    caches.push(cache);
    return { cache, prefix };
  }

  async function ready(cache: RedisCache): Promise<void> {
    for (let i = 0; i < 200; i++) {
      if ((await cache.get(null, "probe")) !== null) return;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error("the cache never connected");
  }

  it("serves a filled copy with its revision, and a miss with the stamp to tag a new one", async () => {
    const { cache } = open();
    await ready(cache);
    const miss = await cache.get("ctx", "c:ctx:basic");
    expect(miss).toEqual({ payload: null, revision: 0, stamp: { revision: 0, generation: 0, epoch: 0 } });
    expect(await cache.fill("ctx", "c:ctx:basic", '{"a":1}', 4, miss!.stamp, 10_000)).toBe(true);
    expect(await cache.get("ctx", "c:ctx:basic")).toEqual({ payload: '{"a":1}', revision: 4, stamp: { revision: 0, generation: 0, epoch: 0 } });
  });

  it("never replaces a newer copy with an older one", async () => {
    const { cache } = open();
    await ready(cache);
    const { stamp } = (await cache.get("ctx", "k"))!;
    expect(await cache.fill("ctx", "k", "five", 5, stamp, 10_000)).toBe(true);
    expect(await cache.fill("ctx", "k", "three", 3, stamp, 10_000)).toBe(false);
    expect((await cache.get("ctx", "k"))?.payload).toBe("five");
  });

  it("stops serving copies older than an advanced revision, deletes the named keys, and refuses fills tagged older", async () => {
    const { cache, prefix } = open();
    await ready(cache);
    const { stamp } = (await cache.get("ctx", "c:ctx:basic"))!;
    await cache.fill("ctx", "c:ctx:basic", "v5", 5, stamp, 10_000);
    await cache.fill("ctx", "m:ctx:bob", "member", 5, stamp, 10_000);
    expect(await cache.advance("ctx", 6, ["c:ctx:basic"])).toBe(true);
    expect(await admin.exists(`${prefix}cache:e:c:ctx:basic`)).toBe(0);
    const after = await cache.get("ctx", "m:ctx:bob");
    expect(after).toMatchObject({ payload: null, stamp: { revision: 6 } });
    expect(await cache.fill("ctx", "m:ctx:bob", "stale", 5, after!.stamp, 10_000)).toBe(false);
    expect(await cache.fill("ctx", "m:ctx:bob", "fresh", 6, after!.stamp, 10_000)).toBe(true);
    expect((await cache.get("ctx", "m:ctx:bob"))?.payload).toBe("fresh");
    // An advance to an older revision (a late message) moves nothing back.
    await cache.advance("ctx", 3, []);
    expect((await cache.get("ctx", "m:ctx:bob"))?.stamp.revision).toBe(6);
  });

  it("sends the advances of one tick together: each context reaches its newest revision, its named keys go", async () => {
    const { cache, prefix } = open();
    await ready(cache);
    const contexts = Array.from({ length: 300 }, (_, i) => `ctx${i}`);
    for (const id of contexts) {
      const { stamp } = (await cache.get(id, `c:${id}:basic`))!;
      await cache.fill(id, `c:${id}:basic`, "old", 1, stamp, 10_000);
    }
    // More contexts than one script call takes, and one context advanced twice (the older one later).
    const done = await Promise.all([...contexts.map((id, i) => cache.advance(id, 10 + i, [`c:${id}:basic`])), cache.advance("ctx0", 5, [])]);
    expect(done.every((ok) => ok)).toBe(true);
    for (const [i, id] of contexts.entries()) {
      expect(await cache.get(id, `c:${id}:basic`)).toMatchObject({ payload: null, stamp: { revision: 10 + i } });
    }
    expect(await admin.exists(`${prefix}cache:e:c:ctx299:basic`)).toBe(0);
  });

  it("publishes the messages carried in a tick, in order, after that tick's stamps moved, in as many calls as it takes", async () => {
    const { cache, prefix } = open();
    await ready(cache);
    const channel = `${prefix}doorbell`;
    const subscriber = new Redis(TEST_REDIS_URL);
    try {
      // What a listener hears next to the stamp of the context it names, read as it heard it.
      const heard: Array<Promise<{ message: string; stamp: number }>> = [];
      subscriber.on("message", (_channel: string, message: string) => {
        const contextId = message.split(" ")[0]!;
        heard.push(cache.get(contextId, "any").then((read) => ({ message, stamp: read!.stamp.revision })));
      });
      await subscriber.subscribe(channel);
      // More than one script call takes; every message after its own context's advance.
      const messages = Array.from({ length: 300 }, (_, i) => `ctx${i} ${i + 1} {"events":[]}`);
      const sent = await Promise.all(
        messages.flatMap((message, i) => [cache.advance(`ctx${i}`, i + 1, []), cache.carry(channel, message)]),
      );
      expect(sent.every(Boolean)).toBe(true);
      for (let i = 0; i < 100 && heard.length < messages.length; i++) await new Promise((r) => setTimeout(r, 10));
      const got = await Promise.all(heard);
      expect(got.map((h) => h.message)).toEqual(messages);
      for (const [i, h] of got.entries()) expect(h.stamp).toBeGreaterThanOrEqual(i + 1);
    } finally {
      subscriber.disconnect();
    }
  });

  it("refuses a fill whose load started before a touch, and stops serving copies from before it", async () => {
    const { cache } = open();
    await ready(cache);
    const before = (await cache.get("ctx", "p:ctx:1"))!.stamp;
    await cache.fill("ctx", "p:ctx:1", "lease 1", 2, before, 10_000);
    expect(await cache.touch("ctx")).toBe(true);
    expect((await cache.get("ctx", "p:ctx:1"))?.payload).toBeNull();
    expect(await cache.fill("ctx", "p:ctx:1", "lease 1 again", 2, before, 10_000)).toBe(false);
    const now = (await cache.get("ctx", "p:ctx:1"))!.stamp;
    expect(now.generation).toBe(before.generation + 1);
    expect(await cache.fill("ctx", "p:ctx:1", "lease 2", 2, now, 10_000)).toBe(true);
  });

  it("disowns every copy, scoped or not, when the epoch is bumped", async () => {
    const { cache } = open();
    await ready(cache);
    const scoped = (await cache.get("ctx", "a"))!.stamp;
    await cache.fill("ctx", "a", "A", 1, scoped, 10_000);
    const unscoped = (await cache.get(null, "s:alice"))!.stamp;
    await cache.fill(null, "s:alice", "stats", 0, unscoped, 10_000);
    expect((await cache.get(null, "s:alice"))?.payload).toBe("stats");
    expect(await cache.bumpEpoch()).toBe(true);
    expect((await cache.get("ctx", "a"))?.payload).toBeNull();
    expect((await cache.get(null, "s:alice"))?.payload).toBeNull();
    expect(await cache.fill(null, "s:alice", "old epoch", 0, unscoped, 10_000)).toBe(false);
  });

  it("keeps a context's stamp at least as long as any copy it judges", async () => {
    const { cache, prefix } = open();
    await ready(cache);
    const { stamp } = (await cache.get("ctx", "k"))!;
    await cache.fill("ctx", "k", "v", 1, stamp, 30_000);
    // The stamp first: read a millisecond later, the entry's remaining time can only be lower.
    const stampTtl = await admin.pttl(`${prefix}cache:m:ctx`);
    const entryTtl = await admin.pttl(`${prefix}cache:e:k`);
    expect(entryTtl).toBeGreaterThan(0);
    expect(stampTtl).toBeGreaterThanOrEqual(entryTtl);
  });

  it("answers misses, not errors, when Redis is unreachable, and warns once", async () => {
    const warnings: unknown[] = [];
    const logger = silentLogger();
    logger.warn = ((...args: unknown[]) => void warnings.push(args)) as Logger["warn"];
    // A port nothing listens on.
    const { cache } = open(logger, "redis://127.0.0.1:1");
    for (let i = 0; i < 5; i++) {
      expect(await cache.get("ctx", "k")).toBeNull();
      expect(await cache.fill("ctx", "k", "v", 1, { revision: 0, generation: 0, epoch: 0 }, 1000)).toBe(false);
      expect(await cache.advance("ctx", 2, [])).toBe(false);
      expect(await cache.carry("doorbell", "ctx 2")).toBe(false);
      expect(await cache.touch("ctx")).toBe(false);
    }
    expect(warnings).toHaveLength(1);
  });
});
