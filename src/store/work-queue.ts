/**
 * First come, first served admission to the primary database: at most `concurrency` operations
 * (a read or a whole transaction) run at once; the rest wait in arrival order, each for at most
 * `maxWaitMs` or until its deadline, whichever comes first.
 *
 * Why: without it an overloaded instance takes every call and lets all of them share the
 * database — postgres.js queues statements, PGlite interleaves them one at a time — so every call
 * gets slower together until all of them miss their deadlines and none succeeds (an embedded
 * server at 800 ListContexts/s answered none). In arrival order the oldest calls finish at the
 * database's own speed, and a call that would wait longer than `maxWaitMs` is turned away with
 * SERVICE_UNAVAILABLE (UNAVAILABLE, with a retry delay) having done nothing, so a client can retry
 * it, on this instance later or on another, and the calls that are served stay fast.
 */
import { AppError } from "../domain/app-error.js";

export interface WorkQueueOptions {
  /** Operations running at once: the pool size on Postgres, 1 on PGlite (one connection). */
  readonly concurrency: number;
  /** The longest an operation waits for its turn before it is turned away. */
  readonly maxWaitMs: number;
  /**
   * Start every operation from the event loop, even when a slot is free (PGlite). PGlite runs
   * each statement synchronously and answers in microtasks, and grpc-js hands over each request
   * in a callback that runs the microtasks it queued before the next request is read: started
   * directly, one call would run to its end before the server even read the next request — the
   * backlog would sit unread in the socket, where no queue timeout or deadline can see it (a
   * loaded embedded server answered calls 10 s late while its queue stayed empty).
   */
  readonly yieldFirst?: boolean;
}

interface Waiter {
  readonly start: () => void;
  readonly timer: NodeJS.Timeout;
  /** Set when the waiter left the queue (timed out): its place is skipped. */
  gone: boolean;
}

export class WorkQueue {
  private readonly concurrency: number;
  private readonly maxWaitMs: number;
  private readonly yieldFirst: boolean;
  private readonly waiters: Waiter[] = [];
  /** Index of the oldest waiter in `waiters` still queued (popping from the front would copy). */
  private head = 0;
  private running = 0;
  private turnedAway = 0;

  constructor(options: WorkQueueOptions) {
    this.concurrency = Math.max(1, Math.floor(options.concurrency));
    this.maxWaitMs = options.maxWaitMs;
    this.yieldFirst = options.yieldFirst ?? false;
  }

  /** Operations running now. */
  get active(): number {
    return this.running;
  }

  /** Operations waiting for their turn now. */
  get waiting(): number {
    let n = 0;
    for (let i = this.head; i < this.waiters.length; i++) if (!this.waiters[i]!.gone) n += 1;
    return n;
  }

  /** Operations turned away since start (waited maxWaitMs). */
  get rejected(): number {
    return this.turnedAway;
  }

  /**
   * Runs `work` when its turn comes. Fails with SERVICE_UNAVAILABLE after maxWaitMs in the queue,
   * or TIMEOUT when `deadline` (epoch ms) passes first; `work` has not started in either case.
   */
  async run<T>(deadline: number | undefined, work: () => Promise<T>): Promise<T> {
    if (this.running < this.concurrency && this.head === this.waiters.length) {
      this.running += 1;
      if (this.yieldFirst) await new Promise<void>((resolve) => setImmediate(resolve));
    } else {
      await this.turn(deadline);
    }
    try {
      return await work();
    } finally {
      this.running -= 1;
      this.next();
    }
  }

  private turn(deadline: number | undefined): Promise<void> {
    const untilDeadline = deadline === undefined ? Infinity : deadline - Date.now();
    const byDeadline = untilDeadline < this.maxWaitMs;
    const waitMs = Math.max(0, Math.min(this.maxWaitMs, untilDeadline));
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        start: resolve,
        gone: false,
        timer: setTimeout(() => {
          waiter.gone = true;
          if (byDeadline) {
            reject(new AppError("TIMEOUT", "the deadline passed while the call waited for the database"));
            return;
          }
          this.turnedAway += 1;
          reject(
            new AppError("SERVICE_UNAVAILABLE", `the database is busy: this call waited ${this.maxWaitMs} ms for its turn and was not run; retry`, {
              retryDelayMs: this.maxWaitMs,
              metadata: { queued_ms: String(this.maxWaitMs) },
            }),
          );
        }, waitMs),
      };
      // Queued only when every slot is taken (a free slot would have been taken in run()).
      this.waiters.push(waiter);
    });
  }

  /** Starts the oldest waiter still queued, if a slot is free. */
  private next(): void {
    while (this.running < this.concurrency && this.head < this.waiters.length) {
      const waiter = this.waiters[this.head]!;
      this.head += 1;
      if (waiter.gone) continue;
      clearTimeout(waiter.timer);
      this.running += 1;
      // From the event loop, not from the finishing operation's promise chain, so the loop reads
      // new requests, flushes answers and fires the waiters' timers between operations (see yieldFirst).
      setImmediate(waiter.start);
    }
    // Drop the consumed front once it is most of the array, so it does not grow forever.
    if (this.head > 1024 && this.head * 2 > this.waiters.length) {
      this.waiters.splice(0, this.head);
      this.head = 0;
    }
  }
}
