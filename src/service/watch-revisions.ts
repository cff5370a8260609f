/**
 * Reads a context's event log as whole revisions. Every watch message carries exactly one
 * revision, so a read that stops inside a revision would split it: pages are cut at revision
 * boundaries, and a revision larger than a page is read to its end before it is handed out.
 */
import type { ContextEvent } from "../domain/event.js";
import type { StoreCall } from "./ports.js";
import type { RevisionBatch, WatchStore } from "./watch-types.js";

/** Complete revisions read from the log, and whether the read reached the end of the log. */
export interface RevisionRead {
  readonly revisions: readonly RevisionBatch[];
  /** True when nothing after the last returned revision existed at the time of the read. */
  readonly atEnd: boolean;
}

/** Events in (revision, seq) order → one batch per revision, in order. */
export function groupByRevision(events: readonly ContextEvent[]): RevisionBatch[] {
  const batches: Array<{ revision: number; events: ContextEvent[] }> = [];
  for (const event of events) {
    const last = batches[batches.length - 1];
    if (last !== undefined && last.revision === event.revision) last.events.push(event);
    else batches.push({ revision: event.revision, events: [event] });
  }
  return batches;
}

/**
 * Whole revisions from `fromRevision` on, about `maxEvents` events' worth (at least one revision
 * when any exists). The first returned revision may be past `fromRevision` when older events
 * were compacted or purged: the caller decides what a jump means.
 */
export async function readRevisions(
  store: Pick<WatchStore, "listEvents">,
  call: StoreCall,
  contextId: string,
  fromRevision: number,
  maxEvents: number,
): Promise<RevisionRead> {
  const limit = Math.max(1, maxEvents);
  const page = await store.listEvents(call, contextId, { revision: fromRevision, seq: 0 }, limit);
  const groups = groupByRevision(page);
  // A short page is the end of the log, so its last revision is complete.
  if (page.length < limit) return { revisions: groups, atEnd: true };
  // The last revision of a full page may go on in the next page: keep only the ones before it.
  if (groups.length > 1) return { revisions: groups.slice(0, -1), atEnd: false };
  return readOneRevision(store, call, contextId, page, limit);
}

/** One revision filled a whole page: read on until it ends. */
async function readOneRevision(
  store: Pick<WatchStore, "listEvents">,
  call: StoreCall,
  contextId: string,
  firstPage: readonly ContextEvent[],
  limit: number,
): Promise<RevisionRead> {
  const events = [...firstPage];
  const revision = events[0]!.revision;
  for (;;) {
    const last = events[events.length - 1]!;
    const more = await store.listEvents(call, contextId, { revision, seq: last.seq + 1 }, limit);
    const same = more.filter((e) => e.revision === revision);
    events.push(...same);
    if (same.length < more.length) return { revisions: [{ revision, events }], atEnd: false };
    if (more.length < limit) return { revisions: [{ revision, events }], atEnd: true };
  }
}
