/**
 * Composition of the read path: the store as it is, or behind the read cache (CACHE_ENABLED) with
 * its in-process L1 and, with REDIS_URL, the shared L2. Part of the composition root (app.ts).
 */
import type { Config } from "./config.js";
import type { Logger } from "./logger.js";
import { CachedContextStore, contextViewKeys, type KeptBase } from "./service/cached-store.js";
import type { ContextStore, Doorbell } from "./service/ports.js";
import { ReadCache, type CacheCounters, type Entry, type Stamp } from "./service/read-cache.js";
import { LruLocalCache } from "./store/local-cache.js";
import { RedisCache } from "./store/redis-cache.js";
import type { RingCarrier } from "./store/redis-doorbell.js";

export interface ReadPath {
  readonly store: ContextStore;
  /** Tell the cache about a commit of this instance (the store's onCommit); a no-op without the cache. */
  committed(contextId: string, revision: number): void;
  /** The cache's counters; null when it is off. */
  readonly counters: (() => CacheCounters) | null;
  /** The shared L2, which can carry the doorbell's rings in its per-commit script; null without one. */
  readonly ringCarrier: RingCarrier | null;
  close(): Promise<void>;
}

export function readPath(store: ContextStore, config: Config, doorbell: Doorbell, logger: Logger): ReadPath {
  if (!config.cacheEnabled) return { store, committed: () => undefined, counters: null, ringCarrier: null, close: async () => undefined };
  const entries = new LruLocalCache<Entry>({ maxEntries: config.cacheL1MaxEntries, maxBytes: config.cacheL1MaxBytes, ttlMs: config.cacheL1TtlMs });
  // A stamp must outlive the entries it judges; one lost early only disowns them (they reload).
  const stamps = new LruLocalCache<Stamp>({ maxEntries: config.cacheL1MaxEntries, maxBytes: config.cacheL1MaxEntries, ttlMs: 2 * config.cacheL1TtlMs });
  const l2 =
    config.redisUrl === undefined
      ? null
      : new RedisCache({
          url: config.redisUrl,
          keyPrefix: config.redisKeyPrefix,
          stampTtlMs: 2 * Math.max(config.cacheL2TtlMs, config.cacheStatisticsTtlMs),
          logger,
        });
  const cache = new ReadCache(entries, stamps, l2, doorbell, { l1TtlMs: config.cacheL1TtlMs }, contextViewKeys);
  // Write bases are this instance's own: kept in memory only, the contexts written last, within a
  // quarter of the L1's byte bound (they hold whole contexts and participants, not encoded copies).
  const bases = new LruLocalCache<KeptBase>({ maxEntries: config.cacheL1MaxEntries, maxBytes: Math.max(1024, Math.floor(config.cacheL1MaxBytes / 4)), ttlMs: config.cacheL1TtlMs });
  const cached = new CachedContextStore(store, cache, { entryMs: config.cacheL2TtlMs, statisticsMs: config.cacheStatisticsTtlMs }, bases);
  const unsubscribe = doorbell.subscribe((contextId, revision) => cached.heard(contextId, revision));
  return {
    store: cached,
    committed: (contextId, revision) => cached.committed(contextId, revision),
    counters: () => cache.counters,
    ringCarrier: l2,
    async close() {
      unsubscribe();
      cache.close();
      await l2?.close();
    },
  };
}
