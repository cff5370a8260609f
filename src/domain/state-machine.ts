/**
 * The two state machines of a context (shared/API.md, "Status transitions", "Lifecycle stages").
 * Anything not listed here is INVALID_STATE_TRANSITION.
 */
import { AppError } from "./app-error.js";
import type { ContextStatus, LifecycleStage } from "./context.js";

const STATUS_MOVES: Readonly<Record<ContextStatus, readonly ContextStatus[]>> = {
  ACTIVE: ["PAUSED", "COMPLETED", "TERMINATED"],
  PAUSED: ["ACTIVE", "COMPLETED", "TERMINATED"],
  COMPLETED: ["TERMINATED"],
  TERMINATED: [],
};

const STAGE_MOVES: Readonly<Record<LifecycleStage, readonly LifecycleStage[]>> = {
  PLANNING: ["EXECUTING"],
  EXECUTING: ["MONITORING", "COMPLETED"],
  MONITORING: ["EXECUTING", "COMPLETED"],
  COMPLETED: [],
};

export interface Position {
  readonly status: ContextStatus;
  readonly lifecycleStage: LifecycleStage;
}

export type TransitionTarget =
  | { readonly kind: "status"; readonly status: ContextStatus }
  | { readonly kind: "stage"; readonly lifecycleStage: LifecycleStage };

function invalid(what: string, from: string, to: string, why = ""): AppError {
  return new AppError("INVALID_STATE_TRANSITION", `cannot move ${what} from ${from} to ${to}${why}`, {
    metadata: { from, to },
  });
}

/**
 * Where a context at `from` ends up when moved to `target`, or INVALID_STATE_TRANSITION.
 * Reaching stage COMPLETED also sets status COMPLETED; a TERMINATED or COMPLETED context's stage
 * no longer moves, since its work is over.
 */
export function transition(from: Position, target: TransitionTarget): Position {
  if (target.kind === "status") {
    if (!STATUS_MOVES[from.status].includes(target.status)) {
      throw invalid("status", from.status, target.status);
    }
    return { status: target.status, lifecycleStage: from.lifecycleStage };
  }
  if (from.status === "COMPLETED" || from.status === "TERMINATED") {
    throw invalid("lifecycle_stage", from.lifecycleStage, target.lifecycleStage, ` (the context is ${from.status})`);
  }
  if (!STAGE_MOVES[from.lifecycleStage].includes(target.lifecycleStage)) {
    throw invalid("lifecycle_stage", from.lifecycleStage, target.lifecycleStage);
  }
  const status = target.lifecycleStage === "COMPLETED" ? "COMPLETED" : from.status;
  return { status, lifecycleStage: target.lifecycleStage };
}

/** Statuses in which DeleteContext needs no `force`. */
export function deletableWithoutForce(status: ContextStatus): boolean {
  return status !== "ACTIVE";
}
