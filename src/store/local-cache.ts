/**
 * The in-process L1 cache: lru-cache bounded by entry count and by bytes, with a TTL. What an
 * entry means and when it is stale is the read cache's business (src/service/read-cache.ts);
 * this only keeps the bounds.
 */
import { LRUCache } from "lru-cache";
import type { LocalCache } from "../service/ports.js";

export interface LruLocalCacheOptions {
  readonly maxEntries: number;
  readonly maxBytes: number;
  readonly ttlMs: number;
}

interface Sized<V> {
  readonly value: V;
  readonly bytes: number;
}

export class LruLocalCache<V> implements LocalCache<V> {
  private readonly lru: LRUCache<string, Sized<V>>;
  private evicted = 0;

  constructor(options: LruLocalCacheOptions) {
    this.lru = new LRUCache<string, Sized<V>>({
      max: options.maxEntries,
      maxSize: options.maxBytes,
      // An entry bigger than the whole bound is not stored at all (lru-cache refuses it).
      sizeCalculation: (entry) => Math.max(1, entry.bytes),
      ttl: options.ttlMs,
      // Expired entries are dropped when read, not by a timer per entry.
      ttlAutopurge: false,
      dispose: (_entry, _key, reason) => {
        if (reason === "evict") this.evicted += 1;
      },
    });
  }

  get(key: string): V | undefined {
    return this.lru.get(key)?.value;
  }

  set(key: string, value: V, bytes: number, ttlMs?: number): void {
    this.lru.set(key, { value, bytes }, ttlMs === undefined ? undefined : { ttl: ttlMs });
  }

  delete(key: string): void {
    this.lru.delete(key);
  }

  clear(): void {
    this.lru.clear();
  }

  get evictions(): number {
    return this.evicted;
  }

  get size(): number {
    return this.lru.size;
  }
}
