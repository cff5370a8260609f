/**
 * The read cache's policy: an in-process L1 in front of the shared L2 (Redis), read-through,
 * with concurrent misses of one key loaded once, and invalidation by revision.
 *
 * Every entry belongs to a context (its `scope`; statistics have none) and is tagged with a
 * revision: a context's own revision, or for anything else (memberships, participant lists) the
 * newest revision known before it was loaded — a lower bound, since every change to a context bumps
 * its revision. This instance keeps a stamp per context: the newest revision it has heard of (its
 * own commits at once, other instances' through the doorbell) and a generation, moved on by
 * "touches" (changes that are not revisions: lease renewals, compaction). An entry is served only
 * while its tag is not older than the stamp's revision and its generation is the stamp's; a load
 * that raced with a change is still returned to its caller but not kept. So:
 *  - a write's own instance serves that revision or a newer one to the next read (read-your-writes);
 *  - other instances within the doorbell's delay (measured in test/e2e/read-cache-cluster.e2e.test.ts);
 *  - no entry ever replaces a newer one (the L2 checks the same rule atomically, see store/redis-cache.ts).
 * Redis trouble is a miss. While this instance cannot hear the doorbell, other instances' writes
 * reach its L1 only by expiry, so L1 entries then live at most DEGRADED_L1_TTL_MS.
 */
import { ALL_CONTEXTS, type Doorbell, type LocalCache, type SharedCache, type SharedCacheRead } from "./ports.js";

/** How often a lost L2 invalidation retries bumping the L2's epoch (see recoverL2). */
const L2_RECOVERY_MS = 500;

/** How long L1 entries live while the doorbell is deaf (the staleness bound during a Redis outage). */
export const DEGRADED_L1_TTL_MS = 1_000;

/** One cacheable read. */
export interface CachedRead<T> {
  /** The context the value belongs to; null for values no revision invalidates (statistics). */
  readonly scope: string | null;
  readonly key: string;
  /** Lifetime in the L2 (and the L1's, when shorter than its default). */
  readonly ttlMs: number;
  /** The value's own revision (contexts); without it the value is tagged with the revision known before loading. */
  readonly revisionOf?: (value: T) => number;
  /** False for values not worth keeping (a context not found: its id is a guess, or it was just deleted). */
  readonly cacheable?: (value: T) => boolean;
  encode(value: T): string;
  decode(payload: string): T;
}

/** What the cache did, for the metrics. */
export interface CacheCounters {
  readonly l1Hits: number;
  readonly l2Hits: number;
  readonly misses: number;
  /** Reads that waited for another read's load of the same key instead of loading it again. */
  readonly coalesced: number;
  /** L1 entries dropped to stay within its bounds. */
  readonly evictions: number;
  /** L1 entries dropped because a write made them stale. */
  readonly invalidations: number;
}

export interface ReadCacheOptions {
  /** The L1's default TTL (CACHE_L1_TTL_MS). */
  readonly l1TtlMs: number;
}

/** A context's stamp on this instance. Entries hold the object itself: a stamp evicted and made anew disowns them. */
export interface Stamp {
  revision: number;
  generation: number;
}

export interface Entry {
  readonly value: unknown;
  readonly tag: number;
  readonly stamp: Stamp | null;
  readonly generation: number;
}

interface Flight {
  readonly promise: Promise<unknown>;
  readonly stamp: Stamp | null;
  readonly revision: number;
  readonly generation: number;
}

export class ReadCache {
  private readonly flights = new Map<string, Flight>();
  private readonly unsubscribe: Array<() => void> = [];
  private degraded = false;
  /** An L2 invalidation failed: its copies cannot be trusted until the epoch is bumped. */
  private l2Lost = false;
  private epochBump: Promise<void> | undefined;
  private recovery: ReturnType<typeof setInterval> | undefined;
  private counts = { l1Hits: 0, l2Hits: 0, misses: 0, coalesced: 0, invalidations: 0 };

  constructor(
    private readonly entries: LocalCache<Entry>,
    private readonly stamps: LocalCache<Stamp>,
    private readonly l2: SharedCache | null,
    private readonly doorbell: Doorbell,
    private readonly options: ReadCacheOptions,
    /** Keys of each context's entries that are cheap to name (its context views), deleted on a change. */
    private readonly namedKeys: (scope: string) => readonly string[],
  ) {
    this.unsubscribe.push(
      doorbell.subscribe((scope, revision) => this.heardRevision(scope, revision)),
      doorbell.subscribeTouches((scope) => this.heardTouch(scope)),
      doorbell.subscribeHealth((connected) => this.doorbellHealth(connected)),
    );
  }

  get counters(): CacheCounters {
    return { ...this.counts, evictions: this.entries.evictions };
  }

  /** The value at `read.key`: from L1, else L2, else `load()` (once for all concurrent misses). */
  async read<T>(read: CachedRead<T>, load: () => Promise<T>): Promise<T> {
    const stamp = read.scope === null ? null : this.stampOf(read.scope);
    const hit = this.entries.get(read.key);
    if (hit !== undefined && this.fresh(hit, stamp)) {
      this.counts.l1Hits += 1;
      return hit.value as T;
    }
    const revision = stamp?.revision ?? 0;
    const generation = stamp?.generation ?? 0;
    const flight = this.flights.get(read.key);
    // Only a load that started after the last change this instance knows of may answer for it.
    if (flight !== undefined && flight.stamp === stamp && flight.revision === revision && flight.generation === generation) {
      this.counts.coalesced += 1;
      try {
        return (await flight.promise) as T;
      } catch {
        // The other caller's failure (its deadline, say) is not ours: load on our own terms.
        return load();
      }
    }
    const promise = this.fetch(read, load, stamp, revision, generation);
    const mine: Flight = { promise, stamp, revision, generation };
    this.flights.set(read.key, mine);
    try {
      return await promise;
    } finally {
      if (this.flights.get(read.key) === mine) this.flights.delete(read.key);
    }
  }

  /**
   * This instance committed `revision` of `scope`: its older copies stop being served here at once,
   * and in the L2 as soon as Redis has it (other instances hear the doorbell's ring).
   */
  committed(scope: string, revision: number): void {
    this.heardRevision(scope, revision);
    if (this.l2 === null) return;
    void this.l2.advance(scope, revision, this.namedKeys(scope)).then((ok) => {
      if (!ok) this.lostL2();
    });
  }

  /**
   * What is cached of `scope` went stale without a new revision. Resolves once the L2 and this
   * instance's L1 dropped it (the caller's next read sees the change); other instances hear the touch.
   */
  async touch(scope: string): Promise<void> {
    // The L2 first: were the L1 dropped first, a read in between could refill it from the old L2 copy.
    if (this.l2 !== null && !(await this.l2.touch(scope))) this.lostL2();
    this.doorbell.touch(scope);
  }

  close(): void {
    for (const off of this.unsubscribe.splice(0)) off();
    clearInterval(this.recovery);
    this.recovery = undefined;
  }

  private async fetch<T>(read: CachedRead<T>, load: () => Promise<T>, stamp: Stamp | null, revision: number, generation: number): Promise<T> {
    const shared = await this.readL2(read);
    if (shared !== null && shared.payload !== null && shared.revision >= (stamp?.revision ?? 0)) {
      try {
        const value = read.decode(shared.payload);
        this.counts.l2Hits += 1;
        this.remember(read, value, shared.payload.length, shared.revision, stamp, generation);
        return value;
      } catch {
        // An entry this version cannot read (written by another version): a miss.
      }
    }
    this.counts.misses += 1;
    const value = await load();
    if (read.cacheable !== undefined && !read.cacheable(value)) return value;
    const tag = read.revisionOf?.(value) ?? Math.max(revision, shared?.stamp.revision ?? 0);
    const payload = read.encode(value);
    this.remember(read, value, payload.length, tag, stamp, generation);
    if (shared !== null) void this.l2?.fill(read.scope, read.key, payload, tag, shared.stamp, read.ttlMs);
    return value;
  }

  private async readL2<T>(read: CachedRead<T>): Promise<SharedCacheRead | null> {
    if (this.l2 === null) return null;
    if (this.l2Lost) {
      await this.recoverL2();
      if (this.l2Lost) return null;
    }
    return this.l2.get(read.scope, read.key);
  }

  /**
   * After lost invalidations every L2 copy is suspect: a new epoch disowns them all. So is every
   * L1 copy another instance loaded from the L2 meanwhile (its ring may have been lost with the
   * invalidation: a Redis restart), so once the epoch moved, every instance is told to drop its L1.
   */
  private recoverL2(): Promise<void> {
    this.epochBump ??= (async () => {
      if (this.l2 !== null && (await this.l2.bumpEpoch())) {
        this.l2Lost = false;
        this.doorbell.touch(ALL_CONTEXTS);
      }
    })().finally(() => {
      this.epochBump = undefined;
    });
    return this.epochBump;
  }

  /** Keeps a loaded value in the L1 unless a change was heard while it loaded. */
  private remember<T>(read: CachedRead<T>, value: T, bytes: number, tag: number, stamp: Stamp | null, generation: number): void {
    if (stamp !== null) {
      if (read.scope === null || this.stamps.get(read.scope) !== stamp) return;
      if (stamp.generation !== generation || tag < stamp.revision) return;
    }
    const ttl = Math.min(read.ttlMs, this.options.l1TtlMs, this.degraded ? DEGRADED_L1_TTL_MS : Number.POSITIVE_INFINITY);
    this.entries.set(read.key, { value, tag, stamp, generation }, bytes, ttl);
  }

  private fresh(entry: Entry, stamp: Stamp | null): boolean {
    if (entry.stamp !== stamp) return false;
    return stamp === null || (entry.generation === stamp.generation && entry.tag >= stamp.revision);
  }

  private stampOf(scope: string): Stamp {
    let stamp = this.stamps.get(scope);
    if (stamp === undefined) {
      stamp = { revision: 0, generation: 0 };
      this.stamps.set(scope, stamp, 1);
    }
    return stamp;
  }

  private heardRevision(scope: string, revision: number): void {
    const stamp = this.stampOf(scope);
    if (revision <= stamp.revision) return;
    stamp.revision = revision;
    this.dropNamed(scope);
  }

  private heardTouch(scope: string): void {
    if (scope === ALL_CONTEXTS) {
      this.forgetAll();
      return;
    }
    const stamp = this.stamps.get(scope);
    if (stamp === undefined) return;
    stamp.generation += 1;
    this.dropNamed(scope);
  }

  private dropNamed(scope: string): void {
    for (const key of this.namedKeys(scope)) {
      if (this.entries.get(key) === undefined) continue;
      this.entries.delete(key);
      this.counts.invalidations += 1;
    }
  }

  /** Deaf to other instances: what the L1 holds may already be stale, and will be until heard again. */
  private doorbellHealth(connected: boolean): void {
    this.degraded = !connected;
    this.forgetAll();
  }

  /** Drops every entry, and the stamps too: a load still out when this happens then keeps nothing. */
  private forgetAll(): void {
    this.entries.clear();
    this.stamps.clear();
  }

  /** An L2 invalidation failed: stop trusting the L2 and keep trying to bump its epoch until it works. */
  private lostL2(): void {
    this.l2Lost = true;
    if (this.recovery !== undefined) return;
    this.recovery = setInterval(() => {
      void this.recoverL2().then(() => {
        if (!this.l2Lost && this.recovery !== undefined) {
          clearInterval(this.recovery);
          this.recovery = undefined;
        }
      });
    }, L2_RECOVERY_MS);
    this.recovery.unref();
  }
}
