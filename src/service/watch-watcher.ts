/**
 * One watch stream inside the hub: a cursor over the context's revisions, a bounded queue and a
 * pump that writes it with back-pressure.
 *
 * The cursor `next` is the only thing that decides what the stream gets, which is what makes the
 * guarantees hold by construction rather than by timing: a revision is accepted only when it is
 * exactly `next` (ordered, unique, atomic — a batch is a whole revision), an older one is a
 * duplicate and dropped, a newer one is a gap the watcher heals itself by reading the log from
 * `next` (reliable). Two modes:
 * - live: the feed pushes each revision it reads; a push onto a full queue ends the watcher with
 *   SLOW_CONSUMER (never blocking the feed, the writers or the other watchers);
 * - pulling: the watcher reads the log itself, as fast as its own queue drains (catch-up from an
 *   old start_revision, or healing a gap), and goes live once it has read to the end of the log
 *   and the feed has nothing newer. A pulling watcher whose queue stays full while the feed moves
 *   on by more than the queue's size is a slow consumer too.
 */
import { AppError } from "../domain/app-error.js";
import { progressClock } from "./watch-progress.js";
import type { RevisionRead } from "./watch-revisions.js";
import type { ReadAccess } from "./watch-access.js";
import type { RevisionBatch, WatchMessage, WatchOutcome, WatchSink } from "./watch-types.js";

/** What a watcher needs from its context's feed. */
export interface WatchSource {
  /** The context it follows (one string for all its watchers). */
  readonly contextId: string;
  /** The newest revision the feed has pushed (or was created at). */
  readonly head: number;
  /** The context is gone from the database (its watchers end once they have read the log to its end). */
  readonly deleted: boolean;
  /** Reads whole revisions of the log from `from`. */
  read(from: number, maxEvents: number): Promise<RevisionRead>;
}

/** What every watcher of a hub shares: one object for all of them, not a copy each. */
export interface WatcherOptions {
  /** Revisions queued unsent before SLOW_CONSUMER. */
  readonly capacity: number;
  readonly readBatchEvents: number;
  /**
   * Called once when the watcher ends, however it ends, with the source it watched: the feed lets
   * go of it. One function for every watcher of a hub, not a closure each (a watch is meant to
   * weigh a few hundred bytes).
   */
  readonly onEnd: (watcher: Watcher, source: WatchSource) => void;
}

type Mode = "live" | "pulling" | "closing" | "done";

/** A watcher's outcome until it is closed otherwise: shared, as a watch is meant to weigh a few hundred bytes. */
const ENDED_OK: WatchOutcome = Object.freeze({ ok: true });

export class Watcher {
  /** The next revision this stream accepts. */
  private nextRevision: number;
  /** The last revision handed to the transport: a client resumes after it. */
  private lastWritten: number;
  private mode: Mode = "pulling";
  private readonly queue: WatchMessage[] = [];
  private queuedRevisions = 0;
  private pumping = false;
  /** Pushes missed while pulling with a full queue, since the last completed write. */
  private stalled = 0;
  private closingOutcome: WatchOutcome = ENDED_OK;
  /** The progressClock slot it is due in while one is pending (0: none); see armProgress. */
  private progressSlot = 0;
  /** When the queue last ran dry (performance.now(), monotonic): progress is due progressIntervalMs after it. */
  private idleSince = 0;
  private roomWaiter: (() => void) | undefined;
  /** How it ended, once it has. */
  private outcome: WatchOutcome | undefined;
  /** `done`, once asked for, and how to settle it. */
  private ending: { readonly promise: Promise<void>; settle(outcome: WatchOutcome): void } | undefined;
  /** Made only when the sink has a signal (a Watch stream's watches have none). */
  private onAbort: (() => void) | undefined;

  /**
   * Resolves when the stream should end with OK; rejects with the error to end it with. Made on
   * first ask: a sink that hears the end itself (EndingSink) never asks, and its watch keeps no promise.
   */
  get done(): Promise<void> {
    if (this.ending === undefined) {
      let settle!: (outcome: WatchOutcome) => void;
      const promise = new Promise<void>((resolve, reject) => {
        settle = (outcome) => (outcome.ok ? resolve() : reject(outcome.error));
      });
      this.ending = { promise, settle };
      if (this.outcome !== undefined) settle(this.outcome);
    }
    return this.ending.promise;
  }

  /** Revisions queued on this stream, not yet written. */
  get queued(): number {
    return this.queuedRevisions;
  }

  constructor(
    private readonly source: WatchSource,
    private readonly sink: WatchSink,
    private readonly access: ReadAccess,
    private readonly options: WatcherOptions,
    /** The first revision to deliver. */
    next: number,
    private readonly progressIntervalMs: number,
  ) {
    this.nextRevision = next;
    this.lastWritten = next - 1;
  }

  get contextId(): string {
    return this.source.contextId;
  }

  get next(): number {
    return this.nextRevision;
  }

  /** Starts delivering: `first` (the snapshot) goes out before any revision. */
  start(first?: WatchMessage): void {
    // Ended already (cancelled as it started).
    if (this.mode === "done") return;
    const signal = this.sink.signal;
    if (signal !== undefined) {
      if (signal.aborted) return this.finish({ ok: false, error: signal.reason });
      this.onAbort = () => this.finish({ ok: false, error: signal.reason });
      signal.addEventListener("abort", this.onAbort, { once: true });
    }
    if (first !== undefined) {
      this.lastWritten = Math.max(this.lastWritten, first.revision);
      this.enqueue(first);
    } else {
      this.armProgress();
    }
    if (this.nextRevision > this.source.head) this.mode = "live";
    else void this.pull();
  }

  /** A revision the feed read: accepted, dropped, or the sign of a gap (see the file comment). */
  offer(batch: RevisionBatch): void {
    if (this.mode === "pulling") {
      if (this.queuedRevisions >= this.options.capacity && ++this.stalled > this.options.capacity) this.slowConsumer();
      return;
    }
    if (this.mode !== "live" || batch.revision < this.nextRevision) return;
    if (batch.revision > this.nextRevision) {
      this.mode = "pulling";
      void this.pull();
      return;
    }
    if (this.queuedRevisions >= this.options.capacity) return this.slowConsumer();
    this.accept(batch);
  }

  /** The context is gone and the feed read its log to the end without this watcher seeing CONTEXT_DELETED. */
  contextGone(): void {
    if (this.mode === "live") this.close({ ok: false, error: AppError.contextNotFound(this.source.contextId) });
  }

  /** Ends the stream now with `error` (hub shutdown). */
  abort(error: unknown): void {
    this.finish({ ok: false, error });
  }

  /** Takes revision `next`: queue it, then end the stream after it when it deletes the context or takes READ away. */
  private accept(batch: RevisionBatch): void {
    this.nextRevision = batch.revision + 1;
    this.queuedRevisions++;
    this.enqueue({ kind: "events", revision: batch.revision, events: batch.events });
    if (batch.events.some((e) => e.type === "CONTEXT_DELETED")) {
      this.close({ ok: true });
    } else if (!this.access.apply(batch)) {
      const error = new AppError("FORBIDDEN", `the caller lost READ on context ${this.source.contextId} at revision ${batch.revision}`, {
        metadata: { context_id: this.source.contextId, permission: "READ", revision: String(batch.revision) },
      });
      this.close({ ok: false, error });
    }
  }

  /** Reads the log from `next` while the queue has room, then goes live (see the file comment). */
  private async pull(): Promise<void> {
    try {
      while (this.mode === "pulling") {
        const room = this.options.capacity - this.queuedRevisions;
        if (room <= 0) {
          await new Promise<void>((resolve) => (this.roomWaiter = resolve));
          continue;
        }
        const read = await this.source.read(this.nextRevision, Math.min(this.options.readBatchEvents, room));
        for (const batch of read.revisions) {
          if (this.mode !== "pulling") return;
          if (batch.revision < this.nextRevision) continue;
          if (batch.revision > this.nextRevision) return this.compacted(batch.revision - 1);
          this.accept(batch);
        }
        if (!read.atEnd || this.mode !== "pulling") continue;
        // The end of the log as this read saw it. The feed pushes everything after its head, so
        // once `next` is past it nothing can fall between the read and the pushes.
        if (this.source.head >= this.nextRevision) continue;
        if (this.source.deleted) return this.close({ ok: false, error: AppError.contextNotFound(this.source.contextId) });
        this.mode = "live";
      }
    } catch (error) {
      this.finish({ ok: false, error });
    }
  }

  private compacted(compactRevision: number): void {
    const error = new AppError("REVISION_COMPACTED", `revision ${this.nextRevision} of context ${this.source.contextId} was compacted`, {
      metadata: { context_id: this.source.contextId, compact_revision: String(compactRevision) },
    });
    this.close({ ok: false, error });
  }

  private slowConsumer(): void {
    const error = new AppError(
      "SLOW_CONSUMER",
      `the stream fell more than ${this.options.capacity} revisions behind: resume from last_revision + 1`,
      { metadata: { context_id: this.source.contextId, last_revision: String(this.lastWritten) } },
    );
    this.finish({ ok: false, error });
  }

  private enqueue(message: WatchMessage): void {
    this.queue.push(message);
    this.pump();
  }

  /**
   * Writes the queue in order, one message at a time, waiting for the transport whenever it asks
   * to (send returns a promise: back-pressure). While the transport keeps up this runs to the end
   * synchronously — no promise, microtask or timer per message — which is what a revision costs
   * each of a context's watchers on the way to its stream.
   */
  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      for (let message = this.queue.shift(); message !== undefined; message = this.queue.shift()) {
        if (this.mode === "done") return this.stopPumping();
        if (message.kind === "events") {
          this.queuedRevisions--;
          this.lastWritten = message.revision;
        }
        this.wakePuller();
        const wait = this.sink.send(message);
        if (wait !== undefined) {
          // Still pumping: messages queued meanwhile wait for the drain, in order.
          wait.then(
            () => this.resume(),
            (error: unknown) => this.sendFailed(error),
          );
          return;
        }
        this.stalled = 0;
      }
    } catch (error) {
      return this.sendFailed(error);
    }
    this.stopPumping();
    if (this.mode === "closing") this.finish(this.closingOutcome);
    else if (this.mode !== "done") this.armProgress();
  }

  /** The transport drained: go on writing. */
  private resume(): void {
    this.stalled = 0;
    this.pumping = false;
    this.pump();
  }

  private stopPumping(): void {
    this.pumping = false;
  }

  private sendFailed(error: unknown): void {
    this.pumping = false;
    this.finish({ ok: false, error: this.sink.signal?.aborted === true ? this.sink.signal.reason : error });
  }

  /** Ends the stream once what is queued has been written. */
  private close(outcome: WatchOutcome): void {
    if (this.mode === "closing" || this.mode === "done") return;
    this.mode = "closing";
    this.closingOutcome = outcome;
    this.wakePuller();
    if (!this.pumping && this.queue.length === 0) this.finish(outcome);
  }

  private finish(outcome: WatchOutcome): void {
    if (this.mode === "done") return;
    this.mode = "done";
    this.queue.length = 0;
    this.queuedRevisions = 0;
    this.disarmProgress();
    this.wakePuller();
    if (this.onAbort !== undefined) this.sink.signal?.removeEventListener("abort", this.onAbort);
    this.options.onEnd(this, this.source);
    this.outcome = outcome;
    this.ending?.settle(outcome);
    this.sink.ended?.(outcome);
  }

  private wakePuller(): void {
    const wake = this.roomWaiter;
    this.roomWaiter = undefined;
    wake?.();
  }

  /**
   * Progress goes out after progressIntervalMs without any other message: the queue ran dry now,
   * so progress is due an interval from now. Called each time the queue runs dry — once per
   * revision on a busy stream — so it only notes the time and leaves a pending timer be: the
   * timer, when it fires, sees whether it is early (something was written since it was set) and
   * sets itself again for the rest, instead of every write clearing and creating one.
   */
  private armProgress(): void {
    this.idleSince = performance.now();
    if (this.progressSlot === 0) this.progressSlot = progressClock.schedule(this, this.progressIntervalMs);
  }

  /** Its progress time came (progressClock; see armProgress). */
  firedProgress(): void {
    this.progressSlot = 0;
    if (this.mode !== "live" && this.mode !== "pulling") return;
    // Writing now: the queue running dry sets the timer again.
    if (this.pumping || this.queue.length > 0) return;
    const left = this.idleSince + this.progressIntervalMs - performance.now();
    // Timers fire on the loop's clock, in whole milliseconds: up to one early is on time.
    if (left > 1) {
      this.progressSlot = progressClock.schedule(this, left);
      return;
    }
    this.enqueue({ kind: "progress", revision: this.nextRevision - 1 });
  }

  private disarmProgress(): void {
    if (this.progressSlot !== 0) progressClock.cancel(this, this.progressSlot);
    this.progressSlot = 0;
  }
}
