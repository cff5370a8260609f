/**
 * UpdateSharedState and GetSharedState. An update is decided on the context and its state at one
 * revision and written in one statement that applies only while the context is still there
 * (writes.ts): expected_revision has exactly one winner per revision, and the state, its revision
 * and its STATE_CHANGED event commit together.
 */
import { AppError } from "../domain/app-error.js";
import type { Context } from "../domain/context.js";
import type { JsonObject } from "../domain/json.js";
import { LIMITS } from "../domain/limits.js";
import { authorize } from "../domain/permissions.js";
import type { SharedState, StateChangeSet } from "../domain/shared-state.js";
import { applyChangeSet } from "../domain/state-apply.js";
import { checkStateSize, validateStateUpdate, type StateUpdateInput } from "../domain/state-changes.js";
import { digestState, digestStateJson } from "../domain/state-checksum.js";
import { Violations } from "../domain/validation.js";
import { readableContext } from "./access.js";
import { storeCall, type Caller } from "./caller.js";
import { requestKeyOf } from "./idempotency.js";
import { changeOf, checkRevision, eventsOf, nextRevision } from "./changes.js";
import type { Clock, ContextStore } from "./ports.js";
import { revisionCompacted, stateAtRevision } from "./state-history.js";
import { memberIn } from "./write-base.js";
import { Writes } from "./writes.js";

export type { StateUpdateInput };

export interface SharedStateOptions {
  /** SHARED_STATE_MAX_BYTES: the largest state, as canonical JSON bytes. */
  readonly maxBytes: number;
  /** STATE_SNAPSHOT_INTERVAL: a snapshot is stored once the newest is this many revisions old. */
  readonly snapshotInterval: number;
}

/** UpdateSharedState's input: the request body plus its target. */
export interface UpdateStateInput extends StateUpdateInput {
  readonly contextId: string;
  readonly expectedRevision: number;
}

/** A state at a revision, with its checksum: what both RPCs answer. */
export interface VersionedState {
  readonly revision: number;
  readonly sharedState: SharedState;
  readonly checksum: string;
}

const METHOD = "UpdateSharedState";

function nonNegative(v: Violations, field: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) v.add(field, "must be a non-negative integer");
}

/**
 * JSON.stringify(result), with the state's canonical text (made for its checksum) put in rather
 * than serialized again; the other fields are the result's own. Key order is not kept (jsonb keeps none).
 */
function versionedStateJson({ sharedState: _state, ...rest }: VersionedState, stateJson: string): string {
  return `{"sharedState":${stateJson},${JSON.stringify(rest).slice(1)}`;
}

/** A context that has ended takes no more state changes; its history stays readable. */
function checkWritable(context: Context): void {
  if (context.status === "TERMINATED" || context.status === "COMPLETED") {
    throw new AppError(
      "INVALID_STATE_TRANSITION",
      `context ${context.contextId} is ${context.status}: its shared state can no longer change`,
      { metadata: { context_id: context.contextId, status: context.status } },
    );
  }
}

export class SharedStateService {
  private readonly writes: Writes;

  constructor(
    private readonly store: ContextStore,
    private readonly clock: Clock,
    private readonly options: SharedStateOptions = { maxBytes: LIMITS.sharedStateBytes, snapshotInterval: 100 },
    writes?: Writes,
  ) {
    this.writes = writes ?? new Writes(store, clock);
  }

  /** Applies the changes, then the replaced parts, atomically at the next revision. */
  async update(caller: Caller, input: UpdateStateInput): Promise<VersionedState> {
    const v = new Violations();
    v.uuid("context_id", input.contextId);
    nonNegative(v, "expected_revision", input.expectedRevision);
    const { edit, requestId } = validateStateUpdate(input, this.options.maxBytes, v);
    const key = requestKeyOf(caller, requestId, METHOD);

    return this.writes.write(storeCall(caller), {
      query: { contextId: input.contextId, withState: true, agents: [caller.principal] },
      ...(key === undefined ? {} : { request: key }),
      replay: (result) => result as unknown as VersionedState,
      decide: (base, now) => {
        const current = base.context;
        authorize(caller.principal, current, memberIn(base, caller.principal) ?? null, "WRITE");
        checkWritable(current);
        checkRevision(current, input.expectedRevision);
        if (current.sharedState === undefined) throw new Error(`the base of ${current.contextId} came without its state`);

        const sharedState = applyChangeSet(current.sharedState, edit);
        const { checksum, bytes, json } = digestStateJson(sharedState);
        checkStateSize(bytes, this.options.maxBytes, edit);

        const { sharedState: _old, ...row } = current;
        const next = nextRevision(row, now);
        const snapshot = next.revision - current.stateSnapshotRevision >= this.options.snapshotInterval;
        const revised: Context = snapshot ? { ...next, stateSnapshotRevision: next.revision } : next;
        const set: StateChangeSet = { ...edit, checksum };
        const events = eventsOf(revised, "STATE_CHANGED", [{ kind: "state", state: set }], caller.principal, "");
        const result: VersionedState = { revision: revised.revision, sharedState, checksum };
        return {
          change: {
            ...changeOf(base, revised, events),
            sharedState,
            stateBytes: bytes,
            // The state's text serialized once, for its checksum, its column and the saved result.
            stateJson: json,
            snapshot,
            ...(key === undefined ? {} : { request: { key, result: result as unknown as JsonObject, json: versionedStateJson(result, json) } }),
          },
          answer: () => result,
        };
      },
    });
  }

  /** The latest state (revision 0), or the state as a retained older revision left it. */
  async get(caller: Caller, input: { contextId: string; revision: number }): Promise<VersionedState> {
    const v = new Violations();
    v.uuid("context_id", input.contextId);
    nonNegative(v, "revision", input.revision);
    v.throwIfAny();
    const call = storeCall(caller);
    const latest = input.revision === 0;
    // The latest state comes with its revision in one row read; an older one is rebuilt from history.
    const context = await readableContext(this.store, call, caller.principal, input.contextId, latest);
    if (latest) {
      if (context.sharedState === undefined) throw new Error(`getContext(withState) returned ${context.contextId} without its state`);
      return { revision: context.revision, sharedState: context.sharedState, checksum: digestState(context.sharedState).checksum };
    }
    if (input.revision > context.revision) {
      throw AppError.validation([{ field: "revision", description: `must be at most the context's revision ${context.revision} (got ${input.revision})` }]);
    }
    if (input.revision <= context.compactRevision) throw revisionCompacted(input.revision, context.compactRevision);
    const { state, checksum } = await stateAtRevision(this.store, call, input.contextId, input.revision);
    return { revision: input.revision, sharedState: state, checksum };
  }
}
