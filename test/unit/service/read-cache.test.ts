import { describe, expect, it } from "vitest";
import type { Doorbell, LocalCache } from "../../../src/service/ports.js";
import { DEGRADED_L1_TTL_MS, ReadCache, type CachedRead, type Entry, type Stamp } from "../../../src/service/read-cache.js";
import { LocalDoorbell } from "../../../src/store/local-doorbell.js";
import { LruLocalCache } from "../../../src/store/local-cache.js";
import { MemorySharedCache } from "../../support/memory-shared-cache.js";

interface Row {
  readonly revision: number;
  readonly body: string;
}

/** A LocalDoorbell whose "can hear other instances" can be switched, as a Redis outage does. */
class SwitchableDoorbell extends LocalDoorbell {
  private readonly health = new Set<(up: boolean) => void>();
  override subscribeHealth(listener?: (up: boolean) => void): () => void {
    if (listener === undefined) return () => undefined;
    this.health.add(listener);
    return () => void this.health.delete(listener);
  }
  setConnected(up: boolean): void {
    for (const l of this.health) l(up);
  }
}

/** The "database": one row per key, and how often each key was loaded. */
class Source {
  readonly rows = new Map<string, Row>();
  readonly loads = new Map<string, number>();
  /** A load resolves when released (when `hold` is on). */
  hold = false;
  private readonly waiting: Array<() => void> = [];

  load(key: string): () => Promise<Row> {
    return async () => {
      this.loads.set(key, (this.loads.get(key) ?? 0) + 1);
      const row = this.rows.get(key) ?? { revision: 0, body: "none" };
      if (this.hold) await new Promise<void>((resolve) => this.waiting.push(resolve));
      return row;
    };
  }

  release(): void {
    for (const resolve of this.waiting.splice(0)) resolve();
  }

  loadsOf(key: string): number {
    return this.loads.get(key) ?? 0;
  }
}

function contextRead(scope: string, ttlMs = 60_000): CachedRead<Row> {
  return { scope, key: `c:${scope}`, ttlMs, revisionOf: (r) => r.revision, encode: (r) => JSON.stringify(r), decode: (p) => JSON.parse(p) as Row };
}

/** A read tagged with the revision known before loading (like a membership). */
function memberRead(scope: string, agent: string): CachedRead<Row> {
  return { scope, key: `m:${scope}:${agent}`, ttlMs: 60_000, encode: (r) => JSON.stringify(r), decode: (p) => JSON.parse(p) as Row };
}

function newCache(options: { l2?: MemorySharedCache | null; doorbell?: Doorbell; entries?: LocalCache<Entry> } = {}) {
  const doorbell = options.doorbell ?? new LocalDoorbell();
  const entries = options.entries ?? new LruLocalCache<Entry>({ maxEntries: 1000, maxBytes: 1_000_000, ttlMs: 60_000 });
  const stamps = new LruLocalCache<Stamp>({ maxEntries: 1000, maxBytes: 1000, ttlMs: 120_000 });
  const l2 = options.l2 === undefined ? new MemorySharedCache() : options.l2;
  const cache = new ReadCache(entries, stamps, l2, doorbell, { l1TtlMs: 60_000 }, (scope) => [`c:${scope}`]);
  return { cache, doorbell, l2 };
}

const tick = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 0));

describe(ReadCache.name, () => {
  describe("read", () => {
    it("loads once for 100 concurrent misses of one key, and serves the rest from the L1", async () => {
      const { cache } = newCache();
      const db = new Source();
      db.rows.set("c:x", { revision: 3, body: "three" });
      db.hold = true;
      const reads = Array.from({ length: 100 }, () => cache.read(contextRead("x"), db.load("c:x")));
      await tick();
      db.release();
      const rows = await Promise.all(reads);
      expect(new Set(rows.map((r) => r.body))).toEqual(new Set(["three"]));
      expect(db.loadsOf("c:x")).toBe(1);
      expect(cache.counters).toMatchObject({ misses: 1, coalesced: 99 });
      await cache.read(contextRead("x"), db.load("c:x"));
      expect(db.loadsOf("c:x")).toBe(1);
      expect(cache.counters.l1Hits).toBe(1);
    });

    it("fills the L2, from which another instance is served without a load", async () => {
      const l2 = new MemorySharedCache();
      const a = newCache({ l2 }).cache;
      const b = newCache({ l2 }).cache;
      const db = new Source();
      db.rows.set("c:x", { revision: 2, body: "two" });
      await a.read(contextRead("x"), db.load("c:x"));
      await tick(); // the L2 fill is not awaited by the reader
      expect(await b.read(contextRead("x"), db.load("c:x"))).toEqual({ revision: 2, body: "two" });
      expect(db.loadsOf("c:x")).toBe(1);
      expect(b.counters.l2Hits).toBe(1);
    });

    it("keeps nothing the caller says is not worth keeping", async () => {
      const { cache } = newCache();
      const db = new Source();
      const read = { ...contextRead("x"), cacheable: () => false };
      await cache.read(read, db.load("c:x"));
      await cache.read(read, db.load("c:x"));
      expect(db.loadsOf("c:x")).toBe(2);
    });

    it("answers from the database, without an error, when the L2 is down", async () => {
      const { cache, l2 } = newCache();
      l2!.down = true;
      const db = new Source();
      db.rows.set("c:x", { revision: 1, body: "one" });
      expect(await cache.read(contextRead("x"), db.load("c:x"))).toEqual({ revision: 1, body: "one" });
      expect(await cache.read(contextRead("x"), db.load("c:x"))).toEqual({ revision: 1, body: "one" });
      expect(db.loadsOf("c:x")).toBe(1); // the L1 still serves
    });

    it("lets a waiter whose shared load failed load on its own", async () => {
      const { cache } = newCache();
      let first = true;
      const flaky = async (): Promise<Row> => {
        await tick();
        if (first) {
          first = false;
          throw new Error("deadline of the first caller");
        }
        return { revision: 1, body: "one" };
      };
      const [a, b] = await Promise.allSettled([cache.read(contextRead("x"), flaky), cache.read(contextRead("x"), flaky)]);
      expect(a.status).toBe("rejected");
      expect(b).toEqual({ status: "fulfilled", value: { revision: 1, body: "one" } });
    });
  });

  describe("invalidation", () => {
    it("serves the committing instance's new revision to its very next read", async () => {
      const { cache } = newCache();
      const db = new Source();
      db.rows.set("c:x", { revision: 1, body: "one" });
      db.rows.set("m:x:bob", { revision: 0, body: "member" });
      await cache.read(contextRead("x"), db.load("c:x"));
      await cache.read(memberRead("x", "bob"), db.load("m:x:bob"));
      db.rows.set("c:x", { revision: 2, body: "two" });
      db.rows.set("m:x:bob", { revision: 0, body: "left" });
      cache.committed("x", 2);
      expect(await cache.read(contextRead("x"), db.load("c:x"))).toEqual({ revision: 2, body: "two" });
      expect(await cache.read(memberRead("x", "bob"), db.load("m:x:bob"))).toEqual({ revision: 0, body: "left" });
    });

    it("does not serve an L2 copy older than a revision this instance committed, even before the L2 has heard of it", async () => {
      const l2 = new MemorySharedCache();
      const { cache } = newCache({ l2 });
      const db = new Source();
      db.rows.set("c:x", { revision: 1, body: "one" });
      await cache.read(contextRead("x"), db.load("c:x"));
      await tick();
      l2.down = true; // the advance is lost…
      db.rows.set("c:x", { revision: 2, body: "two" });
      cache.committed("x", 2);
      l2.down = false; // …and the L2 still holds revision 1 as fresh
      expect(await cache.read(contextRead("x"), db.load("c:x"))).toEqual({ revision: 2, body: "two" });
    });

    it("after an invalidation was lost, bumps the L2's epoch before trusting it again", async () => {
      const l2 = new MemorySharedCache();
      const a = newCache({ l2 }).cache;
      const db = new Source();
      db.rows.set("m:x:bob", { revision: 0, body: "member" });
      await a.read(memberRead("x", "bob"), db.load("m:x:bob"));
      await tick();
      l2.down = true;
      db.rows.set("m:x:bob", { revision: 0, body: "left" });
      a.committed("x", 5);
      await tick();
      l2.down = false;
      // Another instance that never heard revision 5 would take the old copy from the L2, were it
      // not for the epoch: a's next read bumps it.
      await a.read(memberRead("x", "carol"), db.load("m:x:carol"));
      expect(l2.calls.bumpEpoch).toBe(1);
      const b = newCache({ l2 }).cache;
      expect(await b.read(memberRead("x", "bob"), db.load("m:x:bob"))).toEqual({ revision: 0, body: "left" });
    });

    it("once the epoch recovers from a lost invalidation, has every instance drop the L1 copies it may have taken from the old L2", async () => {
      const l2 = new MemorySharedCache();
      const doorbell = new LocalDoorbell();
      const a = newCache({ l2, doorbell }).cache;
      const b = newCache({ l2, doorbell }).cache;
      const db = new Source();
      db.rows.set("c:x", { revision: 1, body: "one" });
      expect(await b.read(contextRead("x"), db.load("c:x"))).toEqual({ revision: 1, body: "one" });
      // A commits revision 2 while Redis is away: its L2 invalidation and its ring are both lost.
      l2.down = true;
      db.rows.set("c:x", { revision: 2, body: "two" });
      a.committed("x", 2);
      await tick();
      l2.down = false;
      // A's next read bumps the epoch; B, which never heard revision 2, must not keep serving revision 1.
      await a.read(contextRead("y"), db.load("c:y"));
      expect(l2.calls.bumpEpoch).toBe(1);
      expect(await b.read(contextRead("x"), db.load("c:x"))).toEqual({ revision: 2, body: "two" });
    });

    it("returns a load that raced with a commit to its caller but does not keep it", async () => {
      const { cache } = newCache();
      const db = new Source();
      db.rows.set("m:x:bob", { revision: 0, body: "old" });
      db.hold = true;
      const racing = cache.read(memberRead("x", "bob"), db.load("m:x:bob"));
      await tick();
      cache.committed("x", 7); // committed while the load was out
      db.rows.set("m:x:bob", { revision: 0, body: "new" });
      db.hold = false;
      db.release();
      expect((await racing).body).toBe("old");
      expect((await cache.read(memberRead("x", "bob"), db.load("m:x:bob"))).body).toBe("new");
    });

    it("does not hand a read that comes after a commit the result of a load that started before it", async () => {
      const { cache } = newCache();
      const db = new Source();
      db.rows.set("c:x", { revision: 1, body: "one" });
      db.hold = true;
      const before = cache.read(contextRead("x"), db.load("c:x"));
      await tick();
      db.rows.set("c:x", { revision: 2, body: "two" });
      cache.committed("x", 2);
      const after = cache.read(contextRead("x"), db.load("c:x"));
      await tick();
      db.release();
      expect((await before).revision).toBe(1);
      expect((await after).revision).toBe(2);
      expect(db.loadsOf("c:x")).toBe(2);
    });

    it("drops a context's copies on this instance at once on a touch, and in the L2", async () => {
      const l2 = new MemorySharedCache();
      const { cache } = newCache({ l2 });
      const db = new Source();
      db.rows.set("m:x:bob", { revision: 0, body: "lease 1" });
      await cache.read(memberRead("x", "bob"), db.load("m:x:bob"));
      await tick();
      db.rows.set("m:x:bob", { revision: 0, body: "lease 2" });
      await cache.touch("x");
      expect((await cache.read(memberRead("x", "bob"), db.load("m:x:bob"))).body).toBe("lease 2");
      expect(l2.calls.touch).toBe(1);
      const other = newCache({ l2 }).cache;
      expect((await other.read(memberRead("x", "bob"), db.load("m:x:bob"))).body).toBe("lease 2");
    });

    it("stops serving copies when another instance's ring or touch is heard", async () => {
      const doorbell = new LocalDoorbell();
      const { cache } = newCache({ doorbell, l2: null });
      const db = new Source();
      db.rows.set("c:x", { revision: 1, body: "one" });
      db.rows.set("m:x:bob", { revision: 0, body: "lease 1" });
      await cache.read(contextRead("x"), db.load("c:x"));
      await cache.read(memberRead("x", "bob"), db.load("m:x:bob"));
      db.rows.set("c:x", { revision: 2, body: "two" });
      doorbell.ring("x", 2);
      await tick();
      expect((await cache.read(contextRead("x"), db.load("c:x"))).body).toBe("two");
      db.rows.set("m:x:bob", { revision: 0, body: "lease 2" });
      doorbell.touch("x");
      expect((await cache.read(memberRead("x", "bob"), db.load("m:x:bob"))).body).toBe("lease 2");
    });

    it("keeps L1 copies at most a second, and starts empty, while the doorbell cannot hear other instances", async () => {
      const doorbell = new SwitchableDoorbell();
      const ttls: Array<number | undefined> = [];
      const lru = new LruLocalCache<Entry>({ maxEntries: 100, maxBytes: 100_000, ttlMs: 60_000 });
      const entries: LocalCache<Entry> = {
        get: (k) => lru.get(k),
        set: (k, v, bytes, ttl) => {
          ttls.push(ttl);
          lru.set(k, v, bytes, ttl);
        },
        delete: (k) => lru.delete(k),
        clear: () => lru.clear(),
        get evictions() {
          return lru.evictions;
        },
        get size() {
          return lru.size;
        },
      };
      const { cache } = newCache({ doorbell, entries, l2: null });
      const db = new Source();
      await cache.read(contextRead("x"), db.load("c:x"));
      expect(ttls.at(-1)).toBe(60_000);
      doorbell.setConnected(false);
      expect(lru.size).toBe(0);
      await cache.read(contextRead("x"), db.load("c:x"));
      expect(ttls.at(-1)).toBe(DEGRADED_L1_TTL_MS);
      doorbell.setConnected(true);
      expect(lru.size).toBe(0);
      await cache.read(contextRead("x"), db.load("c:x"));
      expect(ttls.at(-1)).toBe(60_000);
      expect(db.loadsOf("c:x")).toBe(3);
    });
  });
});
