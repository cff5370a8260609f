/**
 * The Redis doorbell on a real Redis: a ring reaches every subscriber, a killed subscriber
 * connection comes back subscribed by itself, and an unreachable Redis neither fails nor slows a
 * ring (one warning per connection, not one per retry). A ring handed to a carrier (the read
 * cache's stamp script) goes out there alone, and on the publisher when the carrier reports it lost. Skipped with a warning when Redis is down
 * on a dev machine; failing under CI.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Redis } from "ioredis";
import type { Logger } from "../../src/logger.js";
import { silentLogger } from "../../src/logger.js";
import { RedisCache } from "../../src/store/redis-cache.js";
import { RedisDoorbell, type RingCarrier } from "../../src/store/redis-doorbell.js";
import { eventually } from "./support/participants.js";
import { adminRedis, clientList, deleteKeyPrefix, killClientsNamed, randomKeyPrefix, redisAvailable, TEST_REDIS_URL } from "./support/redis.js";

/** A logger that counts its warnings by connection role. */
function countingLogger(): { logger: Logger; warnings: string[] } {
  const warnings: string[] = [];
  const logger = silentLogger();
  logger.warn = ((fields: { role?: string }) => void warnings.push(fields.role ?? "?")) as Logger["warn"];
  return { logger, warnings };
}

const up = await redisAvailable();

describe.skipIf(!up)("the Redis doorbell", () => {
  let admin: Redis;
  const doorbells: RedisDoorbell[] = [];

  beforeAll(async () => {
    admin = adminRedis();
    await admin.connect();
  });

  afterAll(async () => {
    await Promise.all(doorbells.map((d) => d.close()));
    admin?.disconnect();
  });

  function open(keyPrefix: string, logger: Logger = silentLogger(), url = TEST_REDIS_URL): RedisDoorbell {
    const doorbell = new RedisDoorbell({ url, keyPrefix, logger });
    doorbells.push(doorbell);
    return doorbell;
  }

  async function subscribed(channel: string, n: number): Promise<void> {
    await eventually(`${n} subscribers on ${channel}`, async () => {
      const [, count] = (await admin.call("PUBSUB", "NUMSUB", channel)) as [string, number];
      return Number(count) === n ? true : undefined;
    });
  }

  it("carries a ring to every instance, and only within its key prefix", async () => {
    const prefix = randomKeyPrefix();
    const a = open(prefix);
    const b = open(prefix);
    const stranger = open(randomKeyPrefix());
    const heard = { a: [] as string[], b: [] as string[], stranger: [] as string[] };
    a.subscribe((id, rev) => heard.a.push(`${id}@${rev}`));
    b.subscribe((id, rev) => heard.b.push(`${id}@${rev}`));
    stranger.subscribe((id, rev) => heard.stranger.push(`${id}@${rev}`));
    await subscribed(a.channel, 2);
    a.ring("ctx-1", 7);
    await eventually("both to hear the ring", async () => (heard.a.length > 0 && heard.b.length > 0 ? true : undefined));
    expect(heard).toEqual({ a: ["ctx-1@7"], b: ["ctx-1@7"], stranger: [] });
  });

  it("sends a ring with the carrier's command when it carries one, and on its publisher when the carrier lost it", async () => {
    const prefix = randomKeyPrefix();
    const cache = new RedisCache({ url: TEST_REDIS_URL, keyPrefix: prefix, stampTtlMs: 60_000, logger: silentLogger() });
    try {
      const ringer = open(prefix);
      const listener = open(prefix);
      const heard: string[] = [];
      listener.subscribe((id, rev, events) => heard.push(`${id}@${rev}${events === undefined ? "" : ` ${events}`}`));
      await subscribed(listener.channel, 2);
      const carried: string[] = [];
      let working = true;
      const carrier: RingCarrier = {
        carry: async (channel, message) => {
          carried.push(message);
          // Working: the real cache script; lost: reports failure without sending.
          return working ? cache.carry(channel, message) : false;
        },
      };
      ringer.carryRingsWith(carrier);
      await eventually("the cache to connect", async () => ((await cache.get(null, "probe")) !== null ? true : undefined));
      ringer.ring("ctx-1", 3, '{"e":1}');
      working = false;
      ringer.ring("ctx-1", 4);
      await eventually("both rings to be heard", async () => (heard.length >= 2 ? true : undefined));
      // Each once: the carried one by the script alone, the lost one by the publisher.
      await new Promise((r) => setTimeout(r, 50));
      expect(carried).toEqual(['ctx-1 3 {"e":1}', "ctx-1 4"]);
      expect(heard).toEqual(['ctx-1@3 {"e":1}', "ctx-1@4"]);
    } finally {
      await cache.close();
      await deleteKeyPrefix(prefix);
    }
  });

  it("re-subscribes by itself after its connection is killed", async () => {
    const prefix = randomKeyPrefix();
    const ringer = open(prefix);
    const listener = open(prefix);
    const heard: number[] = [];
    listener.subscribe((_id, rev) => heard.push(rev));
    await subscribed(listener.channel, 2);
    const killed = await killClientsNamed(admin, listener.subscriberName);
    expect(killed.length).toBeGreaterThan(0);
    // Both doorbells of this process share the name (pid and prefix), so both were killed: wait for
    // every one back, subscribed, so none is still reconnecting when afterAll closes it. (CI once saw
    // an unhandled "Connection is closed" from this file; ioredis's own re-SUBSCRIBE after a
    // reconnect is a command nothing catches, and the one left reconnecting was the likely holder.)
    await eventually("new subscriber connections, subscribed", async () => {
      const subs = (await clientList(admin)).filter((c) => c.name === listener.subscriberName && !killed.includes(c.id));
      return subs.length === killed.length && subs.every((c) => c.sub === 1) ? true : undefined;
    });
    // Ring until heard: a ring published before the re-subscription landed is lost by design.
    let revision = 100;
    await eventually("a ring after the kill", async () => {
      ringer.ring("ctx", ++revision);
      return heard.some((r) => r > 100) ? true : undefined;
    });
  });

  it("never throws or waits when Redis is unreachable, and warns once per connection", async () => {
    const { logger, warnings } = countingLogger();
    const doorbell = open(randomKeyPrefix(), logger, "redis://127.0.0.1:1");
    for (let i = 0; i < 50; i++) expect(doorbell.ring("ctx", i)).toBeUndefined();
    await eventually("the outage to be logged", async () => (warnings.includes("publisher") && warnings.includes("subscriber") ? true : undefined));
    for (let i = 0; i < 50; i++) doorbell.ring("ctx", i);
    await new Promise((resolve) => setImmediate(resolve));
    expect(warnings.sort()).toEqual(["publisher", "subscriber"]);
    await doorbell.close();
  });
});
