/**
 * The shared state as it was at an older revision: the newest snapshot at or before it, plus the
 * STATE_CHANGED events after the snapshot replayed in order. Snapshots are stored at most
 * STATE_SNAPSHOT_INTERVAL state changes apart, so a read replays fewer than that many change sets.
 * Used by GetSharedState and by the sweeper (which snapshots the state where it compacts).
 */
import { AppError } from "../domain/app-error.js";
import type { ContextEvent } from "../domain/event.js";
import type { SharedState, StateChangeSet } from "../domain/shared-state.js";
import { replayChangeSets } from "../domain/state-apply.js";
import { digestState } from "../domain/state-checksum.js";
import type { ContextStore, StoreCall } from "./ports.js";

/** A state and its checksum. */
export interface StateAt {
  readonly state: SharedState;
  readonly checksum: string;
  /** The revision of the snapshot the replay started from. */
  readonly baseRevision: number;
}

/** REVISION_COMPACTED: the history before `compactRevision` is gone. */
export function revisionCompacted(revision: number, compactRevision: number): AppError {
  return new AppError(
    "REVISION_COMPACTED",
    `revision ${revision} is compacted: history is kept after revision ${compactRevision} only`,
    { metadata: { compact_revision: String(compactRevision), revision: String(revision) } },
  );
}

function changeSetsOf(events: readonly ContextEvent[]): StateChangeSet[] {
  const sets: StateChangeSet[] = [];
  for (const event of events) if (event.payload.kind === "state") sets.push(event.payload.state);
  return sets;
}

/** Compactions racing one read before it gives up (each one leaves a newer snapshot to start from). */
const ATTEMPTS = 3;

/**
 * The state at `revision` (1 <= revision <= head; the caller checked both). Reads without locks:
 * history at or before a committed revision never changes, only compaction removes it, so the
 * compaction horizon is read again after the history was: if it moved past the snapshot the read
 * started from, events may be missing and the read starts over from the newer snapshot.
 */
export async function stateAtRevision(store: ContextStore, call: StoreCall, contextId: string, revision: number): Promise<StateAt> {
  for (let attempt = 1; ; attempt++) {
    const snapshot = await store.stateSnapshotAtOrBefore(call, contextId, revision);
    const events = snapshot === null ? [] : await store.stateChangesBetween(call, contextId, snapshot.revision, revision);
    const context = await store.getContext(call, contextId, { withState: false });
    if (context === null) throw AppError.contextNotFound(contextId);
    if (revision <= context.compactRevision) throw revisionCompacted(revision, context.compactRevision);
    if (snapshot !== null && snapshot.revision >= context.compactRevision) {
      const sets = changeSetsOf(events);
      const state = replayChangeSets(snapshot.state, sets);
      const { checksum } = digestState(state);
      const recorded = sets[sets.length - 1]?.checksum;
      // Each event records the checksum its update computed: a replay that disagrees is a bug, and
      // a wrong state must never be served as if it were right.
      if (recorded !== undefined && recorded !== checksum) {
        throw new AppError("INTERNAL_ERROR", `the history of context ${contextId} does not replay to revision ${revision}`, {
          metadata: { context_id: contextId, revision: String(revision) },
        });
      }
      return { state, checksum, baseRevision: snapshot.revision };
    }
    if (attempt >= ATTEMPTS) throw revisionCompacted(revision, context.compactRevision);
  }
}
