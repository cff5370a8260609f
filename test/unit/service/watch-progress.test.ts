import { describe, expect, it } from "vitest";
import { ProgressClock, type ProgressTarget } from "../../../src/service/watch-progress.js";

/** A target that records when it fired and resolves `fired` then. */
function target(log: string[], name: string): ProgressTarget & { fired: Promise<void> } {
  let resolve!: () => void;
  const fired = new Promise<void>((r) => (resolve = r));
  return {
    fired,
    firedProgress: () => {
      log.push(name);
      resolve();
    },
  };
}

describe(ProgressClock.name, () => {
  it("fires each scheduled target once, in time order, and never a cancelled one", async () => {
    const clock = new ProgressClock();
    const log: string[] = [];
    const [late, early, gone, same] = [target(log, "late"), target(log, "early"), target(log, "gone"), target(log, "same")];
    clock.schedule(late, 60);
    const earlySlot = clock.schedule(early, 20);
    const goneSlot = clock.schedule(gone, 20);
    expect(clock.schedule(same, 20)).toBe(earlySlot);
    clock.cancel(gone, goneSlot);
    expect(clock.pending).toBe(3);
    await late.fired;
    expect(log).toHaveLength(3);
    expect(log[2]).toBe("late");
    expect(new Set(log.slice(0, 2))).toEqual(new Set(["early", "same"]));
    expect(clock.pending).toBe(0);
  });

  it("lets a target schedule itself again from its callback", async () => {
    const clock = new ProgressClock();
    let fires = 0;
    let done!: () => void;
    const twice = new Promise<void>((r) => (done = r));
    const again: ProgressTarget = {
      firedProgress: () => {
        fires += 1;
        if (fires === 1) clock.schedule(again, 15);
        else done();
      },
    };
    clock.schedule(again, 15);
    await twice;
    expect(fires).toBe(2);
    expect(clock.pending).toBe(0);
  });
});
