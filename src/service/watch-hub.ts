/**
 * The watch hub, one per process: it holds every open WatchContext stream, grouped by context into
 * feeds, listens to the doorbell ("context X reached revision N", from this or any instance), and
 * every `reconcileMs` asks the database for the heads of all watched contexts in one query, so a
 * doorbell lost to a Redis blip costs a little latency and never an event.
 *
 * A stream's lifetime: startWatch (validation, READ, snapshot) → a Watcher joins its context's
 * feed → it ends on CONTEXT_DELETED (OK), on losing READ (FORBIDDEN), on falling behind
 * (SLOW_CONSUMER), on cancellation, or when the hub closes (SERVICE_UNAVAILABLE: resume elsewhere).
 * The last watcher of a context to leave takes its feed with it.
 *
 * The events this instance commits reach its own feeds directly (committed, before the doorbell
 * rings), saving each a read of what was just written; other instances hear the doorbell, which
 * carries a small revision's events too (options.decodeEvents), and read only what it did not.
 */
import { AppError } from "../domain/app-error.js";
import type { ContextEvent } from "../domain/event.js";
import type { Logger } from "../logger.js";
import type { Caller } from "./caller.js";
import type { Doorbell } from "./ports.js";
import { WatchFeed } from "./watch-feed.js";
import { groupByRevision } from "./watch-revisions.js";
import { startWatch } from "./watch-start.js";
import { DEFAULT_READ_BATCH_EVENTS, type EndingSink, type WatchHubOptions, type WatchRequest, type WatchSink, type WatchStore } from "./watch-types.js";
import { Watcher, type WatcherOptions, type WatchSource } from "./watch-watcher.js";

/** What the transport calls: one method per stream. */
export interface WatchUseCase {
  watch(caller: Caller, request: WatchRequest, sink: WatchSink): Promise<void>;
  /**
   * Starts a watch whose end `sink.ended` hears: resolves once it has started, rejects with the
   * AppError that refused it (then `ended` is never called). For a stream of many watches.
   */
  open(caller: Caller, request: WatchRequest, sink: EndingSink): Promise<void>;
  /** True once the hub has shut down (a multiplexed stream then ends whole, not watch by watch). */
  readonly isClosed?: boolean;
}

export class WatchHub implements WatchUseCase {
  private readonly feeds = new Map<string, WatchFeed>();
  /** Per context, hand-offs on their way (see committed) and the newest revision among them. */
  private readonly handOffs = new Map<string, { pending: number; revision: number }>();
  private readonly unsubscribe: () => void;
  private readonly timer: NodeJS.Timeout;
  private readonly readBatchEvents: number;
  /** Shared by every watcher of this hub. */
  private readonly watcherOptions: WatcherOptions;
  private reconciling = false;
  private closed = false;

  constructor(
    private readonly store: WatchStore,
    doorbell: Pick<Doorbell, "subscribe">,
    private readonly options: WatchHubOptions,
    private readonly logger?: Logger,
  ) {
    this.readBatchEvents = options.readBatchEvents ?? DEFAULT_READ_BATCH_EVENTS;
    this.watcherOptions = { capacity: options.queueRevisions, readBatchEvents: this.readBatchEvents, onEnd: this.onWatcherEnd };
    this.unsubscribe = doorbell.subscribe((contextId, revision, events) => {
      // This instance's own ring arrives before its hand-off: leave it to the hand-off, which
      // ends with notify(its revision) anyway, rather than start a read of what is on its way.
      if (revision <= (this.handOffs.get(contextId)?.revision ?? 0)) return;
      const feed = this.feeds.get(contextId);
      if (feed === undefined) return;
      if (events !== undefined && options.decodeEvents !== undefined && revision > feed.head) this.ringWithEvents(feed, contextId, events, options.decodeEvents);
      feed.notify(revision);
    });
    this.timer = setInterval(() => void this.reconcile(), options.reconcileMs);
    this.timer.unref();
  }

  /**
   * Serves one stream: resolves when it should end with OK (after CONTEXT_DELETED), rejects with
   * the AppError to end it with. Cancelling `sink.signal` (or calling `sink.started`'s cancel) ends it and frees what it held.
   */
  async watch(caller: Caller, request: WatchRequest, sink: WatchSink): Promise<void> {
    return (await this.begin(caller, request, sink)).done;
  }

  async open(caller: Caller, request: WatchRequest, sink: EndingSink): Promise<void> {
    await this.begin(caller, request, sink);
  }

  /** Starts a watch (both of the above): the watcher, started and in its context's feed. */
  private async begin(caller: Caller, request: WatchRequest, sink: WatchSink): Promise<Watcher> {
    if (this.closed) throw this.shuttingDown();
    const start = await startWatch(this.store, caller, request);
    sink.signal?.throwIfAborted();
    if (this.closed) throw this.shuttingDown();
    const feed = this.feedOf(request.contextId, start.revision);
    const watcher = new Watcher(feed, sink, start.access, this.watcherOptions, start.next, start.progressIntervalMs);
    feed.watchers.add(watcher);
    sink.started?.(watcher);
    watcher.start(start.snapshot);
    // This stream's own read may have seen a revision the feed has not heard of yet.
    feed.notify(start.revision);
    return watcher;
  }

  /**
   * This instance committed `events()` to `contextId`, up to `revision` (whole revisions in
   * (revision, seq) order, as a read of the log returns them): its feed pushes them without
   * reading them back when they continue from its head (WatchFeed.handOff). Called by the
   * store's onCommit, before the ring; `events` is only called when the context is watched here.
   *
   * The push waits for setImmediate, not a microtask: fanning a revision out to many streams
   * takes milliseconds, and it must not delay the committing call's reply (whose continuation
   * runs on the microtasks first). Rings up to `revision` meanwhile are left to the hand-off
   * (see the constructor), which always ends with notify(revision): whatever it could not push,
   * or a failure, is read as the ring would have had it read.
   */
  committed(contextId: string, revision: number, events: () => readonly ContextEvent[]): void {
    if (this.closed || !this.feeds.has(contextId)) return;
    const entry = this.handOffs.get(contextId) ?? { pending: 0, revision: 0 };
    this.handOffs.set(contextId, { pending: entry.pending + 1, revision: Math.max(entry.revision, revision) });
    setImmediate(() => {
      const left = this.handOffs.get(contextId);
      if (left !== undefined && left.pending > 1) this.handOffs.set(contextId, { ...left, pending: left.pending - 1 });
      else this.handOffs.delete(contextId);
      const feed = this.feeds.get(contextId);
      if (feed === undefined || this.closed) return;
      try {
        feed.handOff(groupByRevision(events()));
      } catch (error) {
        this.logger?.warn({ err: error, contextId }, "watch hub could not take the committed events; reading them instead");
      }
      feed.notify(revision);
    });
  }

  /** True once close() ran: every watch has ended with SERVICE_UNAVAILABLE and new ones are refused. */
  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * Another instance's commit, its events carried by the ring: pushed as a hand-off is (only
   * while they continue exactly from the feed's head), saving this instance the read-back. Events
   * that do not decode, or are not all of this context, are left to the read the ring also starts.
   */
  private ringWithEvents(feed: WatchFeed, contextId: string, wire: string, decode: (wire: string) => readonly ContextEvent[]): void {
    try {
      const events = decode(wire);
      if (events.some((e) => e.contextId !== contextId)) throw new Error("a ring carried another context's events");
      feed.handOff(groupByRevision(events));
    } catch (error) {
      this.logger?.warn({ err: error, contextId }, "watch hub could not take a ring's events; reading them instead");
    }
  }

  /** Open streams, for tests and metrics. */
  get watcherCount(): number {
    let n = 0;
    for (const feed of this.feeds.values()) n += feed.watchers.size;
    return n;
  }

  /** The event backlog on this instance: revisions announced but not yet read, plus those queued unsent on each stream. */
  get backlog(): number {
    let n = 0;
    for (const feed of this.feeds.values()) {
      n += feed.unread;
      for (const watcher of feed.watchers) n += watcher.queued;
    }
    return n;
  }

  /** Contexts with at least one open stream. */
  get feedCount(): number {
    return this.feeds.size;
  }

  /**
   * Compares the database heads of all watched contexts with what the feeds have read and reads
   * what is missing; a context gone from the database has its log read to the end. One query
   * however many contexts; runs every reconcileMs, and tests may call it directly.
   */
  async reconcile(): Promise<void> {
    if (this.reconciling || this.closed || this.feeds.size === 0) return;
    this.reconciling = true;
    try {
      const ids = [...this.feeds.keys()];
      const heads = await this.store.heads({}, ids);
      for (const id of ids) {
        const feed = this.feeds.get(id);
        if (feed === undefined) continue;
        const head = heads.get(id);
        if (head === undefined) feed.markDeleted();
        else feed.notify(head);
      }
    } catch (error) {
      this.logger?.warn({ err: error }, "watch hub could not read the database heads; retrying at the next tick");
    } finally {
      this.reconciling = false;
    }
  }

  /** Ends every stream with SERVICE_UNAVAILABLE (clients resume on another instance) and stops listening. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    this.unsubscribe();
    const error = this.shuttingDown();
    for (const feed of [...this.feeds.values()]) for (const watcher of [...feed.watchers]) watcher.abort(error);
    this.feeds.clear();
  }

  private feedOf(contextId: string, head: number): WatchFeed {
    let feed = this.feeds.get(contextId);
    if (feed === undefined) {
      feed = new WatchFeed(this.store, contextId, head, this.readBatchEvents, this.logger);
      this.feeds.set(contextId, feed);
    }
    return feed;
  }

  /** Every watcher's onEnd: the one that ends leaves its feed, and the last takes the feed with it. */
  private readonly onWatcherEnd = (watcher: Watcher, source: WatchSource): void => {
    const feed = source as WatchFeed;
    feed.watchers.delete(watcher);
    if (feed.watchers.size === 0 && this.feeds.get(feed.contextId) === feed) this.feeds.delete(feed.contextId);
  };

  private shuttingDown(): AppError {
    return new AppError("SERVICE_UNAVAILABLE", "the server is shutting down: resume the watch on another instance");
  }
}
