/**
 * The progress timers of every watcher in the process: one Node timer for all of them instead of
 * a Timeout object each (132 B of a watch's ~1.2 KB of heap at 10,000 watches). A watcher is due in
 * a slot of SLOT_MS milliseconds (progress goes out up to that much late; its interval is at least
 * 100 ms); a slot is an array of watchers, and the one timer is set for the earliest slot.
 */

/** What is called when its time comes. */
export interface ProgressTarget {
  firedProgress(): void;
}

const SLOT_MS = 10;

export class ProgressClock {
  private readonly slots = new Map<number, ProgressTarget[]>();
  private timer: NodeJS.Timeout | undefined;
  /** The slot the timer is set for (Infinity: none). */
  private timerSlot = Infinity;

  /** Calls `target.firedProgress()` once, `ms` from now; returns the slot, for cancel(). */
  schedule(target: ProgressTarget, ms: number): number {
    const slot = Math.ceil((performance.now() + ms) / SLOT_MS);
    const list = this.slots.get(slot);
    if (list === undefined) this.slots.set(slot, [target]);
    else list.push(target);
    if (slot < this.timerSlot) this.arm(slot);
    return slot;
  }

  /** Takes `target` out of `slot` (what schedule() returned), so that nothing holds it. */
  cancel(target: ProgressTarget, slot: number): void {
    const list = this.slots.get(slot);
    if (list === undefined) return;
    const at = list.indexOf(target);
    if (at < 0) return;
    list[at] = list[list.length - 1]!;
    list.pop();
    if (list.length === 0) this.slots.delete(slot);
  }

  /** Scheduled targets not yet fired (tests). */
  get pending(): number {
    let count = 0;
    for (const list of this.slots.values()) count += list.length;
    return count;
  }

  private arm(slot: number): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timerSlot = slot;
    this.timer = setTimeout(() => this.fire(), Math.max(0, slot * SLOT_MS - performance.now()));
    // Progress alone must not keep the process alive: the server's handles do that.
    this.timer.unref();
  }

  private fire(): void {
    this.timer = undefined;
    this.timerSlot = Infinity;
    // Timers fire on the loop's clock, in whole milliseconds: up to one early is on time.
    const now = Math.floor((performance.now() + 1) / SLOT_MS);
    const due: ProgressTarget[][] = [];
    let next = Infinity;
    for (const [slot, list] of this.slots) {
      if (slot <= now) {
        due.push(list);
        this.slots.delete(slot);
      } else if (slot < next) {
        next = slot;
      }
    }
    // A target may schedule itself again (into a later slot), which sets the timer if it is earlier.
    for (const list of due) for (const target of list) target.firedProgress();
    if (next < this.timerSlot) this.arm(next);
  }
}

/** The process's one clock: every watcher's progress goes through it. */
export const progressClock = new ProgressClock();
