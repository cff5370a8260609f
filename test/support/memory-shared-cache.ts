/**
 * An in-memory SharedCache with the Redis cache's rules (store/redis-cache.ts), for unit tests of
 * the read cache: entries tagged with revision, generation and epoch, served only while fresh,
 * filled only when the stamp has not moved on. `down` makes every call a miss, as an outage does.
 */
import type { CacheStamp, SharedCache, SharedCacheRead } from "../../src/service/ports.js";

interface StoredEntry {
  readonly payload: string;
  readonly revision: number;
  readonly generation: number;
  readonly epoch: number;
}

export class MemorySharedCache implements SharedCache {
  readonly entries = new Map<string, StoredEntry>();
  readonly stamps = new Map<string, { revision: number; generation: number }>();
  epoch = 0;
  down = false;
  calls = { get: 0, fill: 0, advance: 0, touch: 0, bumpEpoch: 0 };

  async get(scope: string | null, key: string): Promise<SharedCacheRead | null> {
    this.calls.get += 1;
    if (this.down) return null;
    const stamp = this.stampOf(scope);
    const entry = this.entries.get(key);
    const fresh = entry !== undefined && entry.epoch === stamp.epoch && entry.generation === stamp.generation && entry.revision >= stamp.revision;
    return { payload: fresh ? entry.payload : null, revision: fresh ? entry.revision : 0, stamp };
  }

  async fill(scope: string | null, key: string, payload: string, revision: number, stamp: CacheStamp): Promise<boolean> {
    this.calls.fill += 1;
    if (this.down) return false;
    const now = this.stampOf(scope);
    if (now.epoch !== stamp.epoch || revision < now.revision || now.generation !== stamp.generation) return false;
    const current = this.entries.get(key);
    if (current !== undefined && current.revision > revision) return false;
    this.entries.set(key, { payload, revision, generation: stamp.generation, epoch: stamp.epoch });
    return true;
  }

  async advance(scope: string, revision: number, keys: readonly string[]): Promise<boolean> {
    this.calls.advance += 1;
    if (this.down) return false;
    const stamp = this.stamps.get(scope) ?? { revision: 0, generation: 0 };
    stamp.revision = Math.max(stamp.revision, revision);
    this.stamps.set(scope, stamp);
    for (const key of keys) this.entries.delete(key);
    return true;
  }

  async touch(scope: string): Promise<boolean> {
    this.calls.touch += 1;
    if (this.down) return false;
    const stamp = this.stamps.get(scope) ?? { revision: 0, generation: 0 };
    stamp.generation += 1;
    this.stamps.set(scope, stamp);
    return true;
  }

  async bumpEpoch(): Promise<boolean> {
    this.calls.bumpEpoch += 1;
    if (this.down) return false;
    this.epoch += 1;
    return true;
  }

  async close(): Promise<void> {}

  private stampOf(scope: string | null): CacheStamp {
    const stamp = scope === null ? undefined : this.stamps.get(scope);
    return { revision: stamp?.revision ?? 0, generation: stamp?.generation ?? 0, epoch: this.epoch };
  }
}
