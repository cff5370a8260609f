/**
 * The L2 cache shared by every instance (REDIS_URL set). Three kinds of keys, all under the
 * configured prefix:
 *   `cache:e:<key>`      an entry: "<revision> <generation> <epoch> <payload>"
 *   `cache:m:<scope>`    a context's stamp: "<revision> <generation>" (see CacheStamp)
 *   `cache:epoch`        the cache-wide epoch
 * Reads fetch an entry with its stamp in one MGET and serve it only when its tags are not older
 * than the stamp; fills and invalidations are Lua scripts, so "only if not newer" is atomic.
 * A stamp always outlives the entries it judges (fills extend it), or an old entry could outlive
 * the knowledge that it is old.
 *
 * Redis is a copy here, never the truth: every failure is a miss (null / false), commands time out
 * fast and are not queued while disconnected, and an outage is logged once when it starts and once
 * when it ends.
 */
import { Redis } from "ioredis";
import type { Logger } from "../logger.js";
import type { CacheStamp, SharedCache, SharedCacheRead } from "../service/ports.js";

export interface RedisCacheOptions {
  readonly url: string;
  /** Prefix of every key (config.redisKeyPrefix). */
  readonly keyPrefix: string;
  /** How long a context's stamp lives after its last change: longer than any entry's TTL. */
  readonly stampTtlMs: number;
  /** A command slower than this counts as a miss (a hung Redis must not hang reads). */
  readonly commandTimeoutMs?: number;
  readonly logger: Logger;
}

// Stamps are "<revision> <generation>"; a missing one is "0 0".
const PARSE_STAMP = `
local function stamp(v)
  if not v then return 0, 0 end
  local sp = string.find(v, ' ', 1, true)
  return tonumber(string.sub(v, 1, sp - 1)), tonumber(string.sub(v, sp + 1))
end
local function keep(key, ttl)
  if redis.call('PTTL', key) < ttl then redis.call('PEXPIRE', key, ttl) end
end
`;

/** KEYS: entry, stamp, epoch. ARGV: revision, generation, epoch, payload, ttl, scoped (1/0). */
const FILL = `${PARSE_STAMP}
local rev, gen, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[5])
if tonumber(redis.call('GET', KEYS[3]) or '0') ~= tonumber(ARGV[3]) then return 0 end
local m = redis.call('GET', KEYS[2])
local mrev, mgen = stamp(m)
if rev < mrev or gen ~= mgen then return 0 end
local cur = redis.call('GET', KEYS[1])
if cur then
  local crev = stamp(string.match(cur, '^%d+ %d+'))
  if crev > rev then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. ARGV[2] .. ' ' .. ARGV[3] .. ' ' .. ARGV[4], 'PX', ttl)
if ARGV[6] == '1' then
  if m then keep(KEYS[2], ttl) else redis.call('SET', KEYS[2], '0 0', 'PX', ttl) end
end
return 1
`;

/**
 * Advances many contexts' stamps at once, then publishes the messages carried with them (the
 * doorbell's rings of the same commits: after the stamps, so an instance that hears a ring finds
 * the stamp already moved). KEYS: per context its stamp, then its entries to delete. ARGV: the
 * stamp ttl, how many contexts, then per context its revision and how many entries follow its
 * stamp, then per message its channel and the message.
 */
const ADVANCE = `${PARSE_STAMP}
local k = 1
local last = 2 + 2 * tonumber(ARGV[2])
for i = 3, last, 2 do
  local stampKey, rev, entries = KEYS[k], tonumber(ARGV[i]), tonumber(ARGV[i + 1])
  local mrev, mgen = stamp(redis.call('GET', stampKey))
  if rev > mrev then mrev = rev end
  local ttl = math.max(tonumber(ARGV[1]), redis.call('PTTL', stampKey))
  redis.call('SET', stampKey, string.format('%d %d', mrev, mgen), 'PX', ttl)
  for j = k + 1, k + entries do redis.call('DEL', KEYS[j]) end
  k = k + entries + 1
end
for i = last + 1, #ARGV, 2 do redis.call('PUBLISH', ARGV[i], ARGV[i + 1]) end
return 1
`;

/** Contexts advanced (and messages carried) by one script call at most: a sweep may commit thousands in one tick. */
const MAX_ADVANCES_PER_CALL = 256;

/** KEYS: stamp. ARGV: stamp ttl. */
const TOUCH = `${PARSE_STAMP}
local mrev, mgen = stamp(redis.call('GET', KEYS[1]))
local ttl = math.max(tonumber(ARGV[1]), redis.call('PTTL', KEYS[1]))
redis.call('SET', KEYS[1], string.format('%d %d', mrev, mgen + 1), 'PX', ttl)
return 1
`;

interface Scripts {
  mplpCacheFill(entry: string, stamp: string, epoch: string, ...args: Array<string | number>): Promise<number>;
  mplpCacheAdvance(numberOfKeys: number, ...args: Array<string | number>): Promise<number>;
  mplpCacheTouch(stamp: string, ttl: number): Promise<number>;
}

function parseStamp(value: string | null): { revision: number; generation: number } {
  if (value === null) return { revision: 0, generation: 0 };
  const [revision, generation] = value.split(" ").map(Number);
  return { revision: revision ?? 0, generation: generation ?? 0 };
}

/** "<revision> <generation> <epoch> <payload>" → its parts; null when malformed. */
function parseEntry(value: string): { revision: number; generation: number; epoch: number; payload: string } | null {
  const match = /^(\d+) (\d+) (\d+) /.exec(value);
  if (match === null) return null;
  return { revision: Number(match[1]), generation: Number(match[2]), epoch: Number(match[3]), payload: value.slice(match[0].length) };
}

export class RedisCache implements SharedCache {
  private readonly redis: Redis & Scripts;
  private readonly prefix: string;
  private readonly stampTtlMs: number;
  private readonly logger: Logger;
  private failing = false;
  private closed = false;
  /** Advances asked for in this tick, newest revision per context, and the promise of their flush. */
  private readonly advances = new Map<string, { revision: number; keys: readonly string[] }>();
  /** Messages carried in this tick's flush, in order, each with its channel. */
  private carried: Array<{ channel: string; message: string }> = [];
  private advancing: Promise<boolean> | undefined;

  constructor(options: RedisCacheOptions) {
    this.prefix = `${options.keyPrefix}cache:`;
    this.stampTtlMs = options.stampTtlMs;
    this.logger = options.logger;
    this.redis = new Redis(options.url, {
      connectionName: `${options.keyPrefix}cache:${process.pid}`.replace(/\s/g, "_"),
      // Fail at once while disconnected: the database answers instead.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: options.commandTimeoutMs ?? 250,
      // No auto-pipelining: with the offline queue off, an auto-pipelined script command (defineCommand)
      // issued while disconnected neither resolves nor rejects (ioredis#1511), and a read would hang
      // on Redis instead of falling back to the database.
    }) as Redis & Scripts;
    this.redis.defineCommand("mplpCacheFill", { numberOfKeys: 3, lua: FILL });
    this.redis.defineCommand("mplpCacheAdvance", { lua: ADVANCE });
    this.redis.defineCommand("mplpCacheTouch", { numberOfKeys: 1, lua: TOUCH });
    this.redis.on("error", (error: unknown) => this.failed(error));
    this.redis.on("close", () => this.failed(new Error("connection closed")));
    this.redis.on("ready", () => this.recovered());
  }

  async get(scope: string | null, key: string): Promise<SharedCacheRead | null> {
    const keys = [this.entryKey(key), this.stampKey(scope), this.epochKey()];
    const values = await this.attempt(() => this.redis.mget(...keys));
    if (values === null) return null;
    const [entry, stampValue, epochValue] = values as [string | null, string | null, string | null];
    const stamp: CacheStamp = { ...parseStamp(stampValue), epoch: Number(epochValue ?? 0) };
    const parsed = entry === null ? null : parseEntry(entry);
    const fresh =
      parsed !== null && parsed.epoch === stamp.epoch && parsed.generation === stamp.generation && parsed.revision >= stamp.revision;
    return { payload: fresh ? parsed.payload : null, revision: fresh ? parsed.revision : 0, stamp };
  }

  async fill(scope: string | null, key: string, payload: string, revision: number, stamp: CacheStamp, ttlMs: number): Promise<boolean> {
    const done = await this.attempt(() =>
      this.redis.mplpCacheFill(
        this.entryKey(key),
        this.stampKey(scope),
        this.epochKey(),
        revision,
        stamp.generation,
        stamp.epoch,
        payload,
        Math.max(1, Math.round(ttlMs)),
        scope === null ? "0" : "1",
      ),
    );
    return done === 1;
  }

  /**
   * Sent with the other advances of the same tick, in one script call: one write to Redis per tick
   * instead of one per commit (each woke Redis and took its share of a 2-core machine's CPU).
   */
  advance(scope: string, revision: number, keys: readonly string[]): Promise<boolean> {
    const prior = this.advances.get(scope);
    if (prior === undefined || prior.revision < revision) this.advances.set(scope, { revision, keys });
    return this.flushSoon();
  }

  /**
   * Publishes `message` on `channel` in this tick's advance script (RingCarrier): a commit's stamp
   * and its doorbell ring then cost Redis one command, one write and one wakeup, not two. False
   * when it may not have gone out (the caller publishes it another way).
   */
  carry(channel: string, message: string): Promise<boolean> {
    this.carried.push({ channel, message });
    return this.flushSoon();
  }

  private flushSoon(): Promise<boolean> {
    this.advancing ??= new Promise((resolve) => setImmediate(() => resolve(this.flushAdvances())));
    return this.advancing;
  }

  private async flushAdvances(): Promise<boolean> {
    const batch = [...this.advances];
    this.advances.clear();
    const carried = this.carried;
    this.carried = [];
    this.advancing = undefined;
    const calls: Array<Promise<boolean>> = [];
    for (let at = 0; at < Math.max(batch.length, carried.length); at += MAX_ADVANCES_PER_CALL) {
      const advances = batch.slice(at, at + MAX_ADVANCES_PER_CALL);
      const keys: string[] = [];
      const args: Array<string | number> = [this.stampTtlMs, advances.length];
      for (const [scope, { revision, keys: entries }] of advances) {
        keys.push(this.stampKey(scope), ...entries.map((k) => this.entryKey(k)));
        args.push(revision, entries.length);
      }
      for (const { channel, message } of carried.slice(at, at + MAX_ADVANCES_PER_CALL)) args.push(channel, message);
      calls.push(this.attempt(() => this.redis.mplpCacheAdvance(keys.length, ...keys, ...args)).then((done) => done === 1));
    }
    return (await Promise.all(calls)).every(Boolean);
  }

  async touch(scope: string): Promise<boolean> {
    return (await this.attempt(() => this.redis.mplpCacheTouch(this.stampKey(scope), this.stampTtlMs))) === 1;
  }

  async bumpEpoch(): Promise<boolean> {
    return (await this.attempt(() => this.redis.incr(this.epochKey()))) !== null;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.redis.status === "ready") await this.redis.quit().then(() => undefined, () => this.redis.disconnect());
    else this.redis.disconnect();
  }

  private entryKey(key: string): string {
    return `${this.prefix}e:${key}`;
  }

  /** Unscoped entries (statistics) share a stamp no one advances: only the epoch judges them. */
  private stampKey(scope: string | null): string {
    return `${this.prefix}m:${scope ?? "-"}`;
  }

  private epochKey(): string {
    return `${this.prefix}epoch`;
  }

  /** Runs a command; null on any failure (logged once per outage). */
  private async attempt<T>(command: () => Promise<T>): Promise<T | null> {
    if (this.closed || this.redis.status !== "ready") {
      if (!this.closed) this.failed(new Error(`connection is ${this.redis.status}`));
      return null;
    }
    try {
      const result = await command();
      this.recovered();
      return result;
    } catch (error) {
      this.failed(error);
      return null;
    }
  }

  /** Back after failures (a reconnect, or a command that works again after timeouts). */
  private recovered(): void {
    if (!this.failing || this.closed) return;
    this.failing = false;
    this.logger.info("redis cache is reachable again");
  }

  private failed(error: unknown): void {
    if (this.closed || this.failing) return;
    this.failing = true;
    this.logger.warn({ err: error }, "redis cache is unreachable: reads go to the database until it is back");
  }
}
