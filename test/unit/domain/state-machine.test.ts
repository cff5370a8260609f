import { describe, expect, it } from "vitest";
import type { AppError } from "../../../src/domain/app-error.js";
import { CONTEXT_STATUSES, LIFECYCLE_STAGES, type ContextStatus, type LifecycleStage } from "../../../src/domain/context.js";
import { deletableWithoutForce, transition } from "../../../src/domain/state-machine.js";

const ALLOWED_STATUS: Record<ContextStatus, ContextStatus[]> = {
  ACTIVE: ["PAUSED", "COMPLETED", "TERMINATED"],
  PAUSED: ["ACTIVE", "COMPLETED", "TERMINATED"],
  COMPLETED: ["TERMINATED"],
  TERMINATED: [],
};
const ALLOWED_STAGE: Record<LifecycleStage, LifecycleStage[]> = {
  PLANNING: ["EXECUTING"],
  EXECUTING: ["MONITORING", "COMPLETED"],
  MONITORING: ["EXECUTING", "COMPLETED"],
  COMPLETED: [],
};

function reasonOf(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (e) {
    return (e as AppError).reason;
  }
}

describe("transition", () => {
  describe("status", () => {
    for (const from of CONTEXT_STATUSES) {
      for (const to of CONTEXT_STATUSES) {
        const allowed = ALLOWED_STATUS[from].includes(to);
        it(`${allowed ? "allows" : "refuses"} ${from} → ${to}`, () => {
          const run = () => transition({ status: from, lifecycleStage: "EXECUTING" }, { kind: "status", status: to });
          if (allowed) expect(run()).toEqual({ status: to, lifecycleStage: "EXECUTING" });
          else expect(reasonOf(run)).toBe("INVALID_STATE_TRANSITION");
        });
      }
    }
  });

  describe("lifecycle stage", () => {
    for (const from of LIFECYCLE_STAGES) {
      for (const to of LIFECYCLE_STAGES) {
        const allowed = ALLOWED_STAGE[from].includes(to);
        it(`${allowed ? "allows" : "refuses"} ${from} → ${to} on an ACTIVE context`, () => {
          const run = () => transition({ status: "ACTIVE", lifecycleStage: from }, { kind: "stage", lifecycleStage: to });
          if (allowed) expect(run().lifecycleStage).toBe(to);
          else expect(reasonOf(run)).toBe("INVALID_STATE_TRANSITION");
        });
      }
    }

    it("sets status COMPLETED when the stage reaches COMPLETED", () => {
      expect(transition({ status: "ACTIVE", lifecycleStage: "MONITORING" }, { kind: "stage", lifecycleStage: "COMPLETED" })).toEqual({
        status: "COMPLETED",
        lifecycleStage: "COMPLETED",
      });
    });

    it("keeps a PAUSED context paused while its stage moves", () => {
      expect(transition({ status: "PAUSED", lifecycleStage: "PLANNING" }, { kind: "stage", lifecycleStage: "EXECUTING" }).status).toBe("PAUSED");
    });

    it("refuses to move the stage of a TERMINATED context", () => {
      const run = () => transition({ status: "TERMINATED", lifecycleStage: "PLANNING" }, { kind: "stage", lifecycleStage: "EXECUTING" });
      expect(reasonOf(run)).toBe("INVALID_STATE_TRANSITION");
    });
  });
});

describe("deletableWithoutForce", () => {
  it("needs force only for ACTIVE contexts", () => {
    expect(CONTEXT_STATUSES.filter((s) => !deletableWithoutForce(s))).toEqual(["ACTIVE"]);
  });
});
