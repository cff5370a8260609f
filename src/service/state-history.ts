/**
 * The shared state as it was at an older revision: the newest snapshot at or before it, plus the
 * STATE_CHANGED events after the snapshot replayed in order. Snapshots are stored at most
 * STATE_SNAPSHOT_INTERVAL state changes apart, so a read replays fewer than that many change sets.
 * Used by GetSharedState and by the sweeper (which snapshots the state where it compacts).
 */
import { AppError } from "../domain/app-error.js";
import type { SharedState } from "../domain/shared-state.js";
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

/**
 * The state at `revision` (1 <= revision <= head; the caller checked both), from one statement:
 * the snapshot, the change sets after it and the compaction horizon are read in one snapshot of
 * the database, so a compaction cannot remove events between them.
 */
export async function stateAtRevision(store: ContextStore, call: StoreCall, contextId: string, revision: number): Promise<StateAt> {
  const history = await store.stateHistory(call, contextId, revision);
  if (history === null) throw AppError.contextNotFound(contextId);
  const { snapshot, changes, compactRevision } = history;
  if (revision <= compactRevision || snapshot === null || snapshot.revision < compactRevision) {
    throw revisionCompacted(revision, compactRevision);
  }
  const state = replayChangeSets(snapshot.state, changes);
  const { checksum } = digestState(state);
  const recorded = changes[changes.length - 1]?.checksum;
  // Each event records the checksum its update computed: a replay that disagrees is a bug, and
  // a wrong state must never be served as if it were right.
  if (recorded !== undefined && recorded !== checksum) {
    throw new AppError("INTERNAL_ERROR", `the history of context ${contextId} does not replay to revision ${revision}`, {
      metadata: { context_id: contextId, revision: String(revision) },
    });
  }
  return { state, checksum, baseRevision: snapshot.revision };
}
