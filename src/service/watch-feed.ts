/**
 * One context's feed inside the hub: it reads the revisions its watchers have not seen from the
 * database — one read in flight per context, however many watchers — and pushes each revision to
 * every watcher, which keeps or drops it by its own cursor.
 *
 * The feed learns that there is something to read from doorbells and from the hub's periodic
 * reconcile (the database heads): `target` is the newest revision either has announced, `head` the
 * newest it has read and pushed. Its reads start at head + 1 and push revisions in order, so a
 * watcher whose cursor is past the head can rely on the pushes alone.
 *
 * Revisions this instance commits itself are handed over by the store instead (handOff) and
 * pushed without the read-back when they continue exactly from the head; everything else —
 * gaps, other instances' commits, reconcile — goes through the read.
 */
import type { Logger } from "../logger.js";
import { readRevisions, type RevisionRead } from "./watch-revisions.js";
import type { Watcher, WatchSource } from "./watch-watcher.js";
import type { RevisionBatch, WatchStore } from "./watch-types.js";

export class WatchFeed implements WatchSource {
  readonly watchers = new Set<Watcher>();
  private currentHead: number;
  private target: number;
  private gone = false;
  private reading = false;
  /** The last read failed: the next failure is not logged again (a database outage would repeat it every tick). */
  private failing = false;

  /** Revisions announced (doorbell, reconcile) that this feed has not read yet. */
  get unread(): number {
    return Math.max(0, this.target - this.currentHead);
  }

  /**
   * @param head a revision of the context read at or before the feed's creation: the feed reads
   *   what comes after it (a watcher starting earlier reads the rest itself)
   */
  constructor(
    private readonly store: Pick<WatchStore, "listEvents">,
    readonly contextId: string,
    head: number,
    private readonly readBatchEvents: number,
    private readonly logger?: Logger,
  ) {
    this.currentHead = head;
    this.target = head;
  }

  get head(): number {
    return this.currentHead;
  }

  get deleted(): boolean {
    return this.gone;
  }

  read(from: number, maxEvents: number): Promise<RevisionRead> {
    // No deadline: these reads serve streams that last as long as they like; the database's
    // statement timeout still bounds each one.
    return readRevisions(this.store, {}, this.contextId, from, maxEvents);
  }

  /** The context reached `revision` (a doorbell, a reconcile, or a watcher's own read). */
  notify(revision: number): void {
    if (revision > this.target) this.target = revision;
    void this.catchUp();
  }

  /**
   * Revisions this instance has just committed, in order, each with all its events (the store
   * hands over what the committing transaction appended, and a revision is written by one
   * transaction). They are pushed as a read would push them — one by one while each is exactly
   * head + 1 and whole — which saves the database round trip. The rest goes the usual way: a
   * gap (a concurrent commit whose hand-off comes later, another instance's revision) makes the
   * feed read from its head. Revisions up to the head were pushed already (a read got there
   * first) and are skipped; the watchers' cursors would drop them anyway.
   */
  handOff(batches: readonly RevisionBatch[]): void {
    for (const batch of batches) {
      if (batch.revision <= this.currentHead) continue;
      if (batch.revision !== this.currentHead + 1 || !isWhole(batch)) break;
      this.push(batch);
    }
    const last = batches[batches.length - 1];
    // Reads whatever the hand-off could not cover; a no-op when it covered everything.
    if (last !== undefined) this.notify(last.revision);
  }

  /** The context is no longer in the database: read the log to its end (CONTEXT_DELETED is there), then end whoever did not see it. */
  markDeleted(): void {
    this.gone = true;
    this.target = Number.POSITIVE_INFINITY;
    void this.catchUp();
  }

  /** Reads from head + 1 until the target is reached; one loop per feed at a time. */
  private async catchUp(): Promise<void> {
    if (this.reading) return;
    this.reading = true;
    try {
      while (this.target > this.currentHead && this.watchers.size > 0) {
        const read = await this.read(this.currentHead + 1, this.readBatchEvents);
        for (const batch of read.revisions) {
          if (batch.revision <= this.currentHead) continue;
          this.push(batch);
        }
        if (read.atEnd && read.revisions.length === 0) {
          // Nothing past the head although a ring said so (a stale ring, or the log purged):
          // stop here; the next doorbell or reconcile tries again.
          this.target = this.currentHead;
          if (this.gone) for (const watcher of [...this.watchers]) watcher.contextGone();
        }
        this.failing = false;
      }
    } catch (error) {
      // The watchers keep their cursors; the next doorbell or reconcile retries the read.
      if (!this.failing) this.logger?.warn({ err: error, contextId: this.contextId }, "watch feed could not read the event log");
      this.failing = true;
    } finally {
      this.reading = false;
    }
  }

  /** Revision head + 1 to every watcher: the one place the head moves. */
  private push(batch: RevisionBatch): void {
    this.currentHead = batch.revision;
    // No copy of the set, once per revision: a watcher that ends on this revision leaves it while
    // we iterate, which a Set's iteration allows (the rest are still visited, each once), and none
    // joins meanwhile (a watch joins after its start's reads, never inside a push).
    for (const watcher of this.watchers) watcher.offer(batch);
  }
}

/** All of one revision's events, seq 0, 1, …: the checkable half of "whole" (the store vouches for the tail). */
function isWhole(batch: RevisionBatch): boolean {
  return batch.events.length > 0 && batch.events.every((e, i) => e.revision === batch.revision && e.seq === i);
}
