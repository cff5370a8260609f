/**
 * ListContexts' first pages, kept per principal, filter, page size and count between revisions.
 * A first page is a statement that walks the readable contexts and counts them up to
 * TOTAL_SIZE_CAP + 1, then 20 contexts to parse and map — a dashboard polling it is the read most
 * often repeated unchanged. Any revision of any context — this instance's commit or another's heard
 * on the doorbell — may change who reads what, so it drops every kept page; a page read while one
 * happened is not kept. Concurrent misses of one page read it once, as the read cache's do.
 *
 * TTL_MS bounds what a lost doorbell ring, or a context kept alive by another instance's sweeper
 * (its expiry moves without a revision), can cost: a page at most that old. ListContexts reads a
 * replica when one is configured (DATABASE_READ_URL), which may be as far behind; total_size is an
 * estimate in the contract (AIP-158), and later pages repeat the first page's figure.
 */
import type { ContextListResult } from "./ports.js";

const TTL_MS = 1_000;
/**
 * Contexts held in kept pages at most (a context is a few KB on the heap: ~30 MB at the bound);
 * past it every page is dropped (a burst of distinct principals or filters).
 */
const MAX_CONTEXTS = 10_000;

interface Kept {
  readonly result: ContextListResult;
  readonly at: number;
}

/** A page being read, and the generation it started at. */
interface Flight {
  readonly begun: number;
  readonly page: Promise<ContextListResult>;
}

export class ListPages {
  private readonly kept = new Map<string, Kept>();
  /** Reads in progress by key: concurrent misses of one page read it once. */
  private readonly flights = new Map<string, Flight>();
  private contexts = 0;
  /** Moves on with every revision heard: a page read before it is not kept. */
  private generation = 0;

  constructor(private readonly now: () => number = Date.now) {}

  /**
   * The page at `key`: kept, else from a read of it already in progress that started after the
   * last revision heard, else from `read()` (kept unless a revision came meanwhile). A waiter whose
   * shared read fails (the first caller's deadline, say) reads on its own terms.
   */
  async load(key: string, read: () => Promise<ContextListResult>): Promise<ContextListResult> {
    const kept = this.get(key);
    if (kept !== undefined) return kept;
    const flight = this.flights.get(key);
    if (flight !== undefined && flight.begun === this.generation) {
      try {
        return await flight.page;
      } catch {
        return read();
      }
    }
    const mine: Flight = { begun: this.generation, page: read() };
    this.flights.set(key, mine);
    try {
      const result = await mine.page;
      this.keep(key, result, mine.begun);
      return result;
    } finally {
      if (this.flights.get(key) === mine) this.flights.delete(key);
    }
  }

  /** The kept page for `key`, if it is fresh. */
  get(key: string): ContextListResult | undefined {
    const kept = this.kept.get(key);
    if (kept === undefined) return undefined;
    if (this.now() - kept.at > TTL_MS) {
      this.kept.delete(key);
      this.contexts -= kept.result.contexts.length;
      return undefined;
    }
    return kept.result;
  }

  /** Keeps a page whose read began at generation `begun`, unless a revision was heard since. */
  private keep(key: string, result: ContextListResult, begun: number): void {
    if (begun !== this.generation) return;
    const prior = this.kept.get(key);
    if (prior !== undefined) this.contexts -= prior.result.contexts.length;
    if (this.contexts + result.contexts.length > MAX_CONTEXTS) this.clear();
    this.kept.set(key, { result, at: this.now() });
    this.contexts += result.contexts.length;
  }

  /** A revision of some context: every kept page may be wrong now. */
  revised(): void {
    this.generation += 1;
    this.clear();
  }

  private clear(): void {
    this.kept.clear();
    this.contexts = 0;
  }
}
