/**
 * The test Redis (TEST_REDIS_URL, default redis://127.0.0.1:6379) for suites that run several
 * instances: whether it answers (skipped with a warning on a dev machine, failing under CI, as
 * Postgres is), a random key prefix per test, and killing the connections of one instance.
 */
import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";

export const TEST_REDIS_URL = process.env["TEST_REDIS_URL"] ?? "redis://127.0.0.1:6379";

function runningInCi(): boolean {
  const ci = process.env["CI"];
  return ci !== undefined && ci !== "" && ci !== "false" && ci !== "0";
}

/** A client that gives up at once instead of retrying, for probes and admin commands. */
export function adminRedis(): Redis {
  return new Redis(TEST_REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false });
}

let availability: Promise<boolean> | undefined;

/** Whether the test Redis answers; under CI a missing Redis fails the run instead of skipping. */
export function redisAvailable(): Promise<boolean> {
  availability ??= (async () => {
    const probe = adminRedis();
    probe.on("error", () => {});
    try {
      await probe.connect();
      await probe.ping();
      return true;
    } catch (error) {
      const where = new URL(TEST_REDIS_URL).host;
      if (runningInCi()) throw new Error(`Redis at ${where} (TEST_REDIS_URL) does not answer, and CI must not skip its tests`, { cause: error });
      console.warn(`⚠ Redis at ${where} (TEST_REDIS_URL) does not answer: its tests are SKIPPED.`);
      return false;
    } finally {
      probe.disconnect();
    }
  })();
  return availability;
}

/** A fresh REDIS_KEY_PREFIX, so concurrent runs never hear each other's doorbells. */
export function randomKeyPrefix(): string {
  return `test:${randomUUID().slice(0, 8)}:`;
}

/** One row of CLIENT LIST. */
export interface RedisClientInfo {
  readonly id: string;
  readonly name: string;
  /** Channels subscribed. */
  readonly sub: number;
}

export async function clientList(redis: Redis): Promise<RedisClientInfo[]> {
  const text = (await redis.call("CLIENT", "LIST")) as string;
  return text
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => {
      const fields = new Map(line.trim().split(" ").map((kv) => kv.split("=", 2) as [string, string]));
      return { id: fields.get("id") ?? "", name: fields.get("name") ?? "", sub: Number(fields.get("sub") ?? 0) };
    });
}

/** Kills every connection whose name is `name` (CLIENT KILL ID); returns the ids killed. */
export async function killClientsNamed(redis: Redis, name: string): Promise<string[]> {
  const victims = (await clientList(redis)).filter((c) => c.name === name);
  for (const c of victims) await redis.call("CLIENT", "KILL", "ID", c.id);
  return victims.map((c) => c.id);
}

/** Deletes every key under `prefix` (the read cache's entries and stamps), so a suite leaves Redis as it found it. */
export async function deleteKeyPrefix(prefix: string): Promise<void> {
  const admin = adminRedis();
  admin.on("error", () => {});
  try {
    await admin.connect();
    let cursor = "0";
    do {
      const [next, keys] = await admin.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000);
      if (keys.length > 0) await admin.del(...keys);
      cursor = next;
    } while (cursor !== "0");
  } finally {
    admin.disconnect();
  }
}
