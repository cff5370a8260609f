/**
 * WATCH_MAX_PER_PRINCIPAL: how many watches one principal may hold open on this instance, counting
 * WatchContext streams and the watches of Watch streams alike. Every open watch holds a feed slot
 * and a queue; without a cap one caller could pin an instance's memory by opening watches it never
 * reads. The counts live in a map that holds principals with at least one open watch only, so it
 * is bounded by open watches.
 */
import { AppError } from "../domain/app-error.js";

export class WatchQuota {
  private readonly open = new Map<string, number>();

  constructor(private readonly maxPerPrincipal: number) {}

  /**
   * Takes a slot for `principal`, or throws RESOURCE_EXHAUSTED / RATE_LIMITED; the returned
   * function gives it back (call it exactly once, when the stream ends).
   */
  acquire(principal: string): () => void {
    this.take(principal);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.give(principal);
    };
  }

  /**
   * acquire() without the closure, for a caller that holds many slots and gives each back exactly
   * once itself (a Watch stream's watches: a closure and its context per watch cost ~100 B).
   */
  take(principal: string): void {
    const count = this.open.get(principal) ?? 0;
    if (count >= this.maxPerPrincipal) {
      throw new AppError("RATE_LIMITED", `too many open watches: at most ${this.maxPerPrincipal} per principal; close one first`, {
        metadata: { limit: String(this.maxPerPrincipal), open_watches: String(count) },
      });
    }
    this.open.set(principal, count + 1);
  }

  /** Gives back one slot that take() gave `principal`. */
  give(principal: string): void {
    const left = (this.open.get(principal) ?? 1) - 1;
    if (left <= 0) this.open.delete(principal);
    else this.open.set(principal, left);
  }

  /** Open streams of `principal` (tests). */
  openOf(principal: string): number {
    return this.open.get(principal) ?? 0;
  }
}
