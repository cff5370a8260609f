/**
 * The watch validator: etcd's robustness checks for watch, applied to recorded streams against the
 * database's event log (ListContextEvents).
 *
 * - ordered: revisions strictly increase within a stream;
 * - unique: no revision twice in a stream;
 * - atomic: each message holds exactly the events of its revision, in the log's order;
 * - reliable: no gap — a stream delivers every revision from its start on, up to `through` when
 *   it stayed open that long;
 * - resumable: a stream resumed from an earlier one starts exactly where asked (at most the
 *   earlier stream's last revision + 1, so nothing falls between them) and repeats the earlier
 *   stream's revisions identically.
 */

/** One events message as a client received it. */
export interface RecordedMessage {
  readonly revision: number;
  readonly eventIds: readonly string[];
}

/** One stream as a client recorded it. */
export interface RecordedStream {
  /** Names the stream in violations. */
  readonly label: string;
  /**
   * The first revision the stream had to deliver: its start_revision, or the snapshot's revision
   * + 1. Undefined (start_revision 0 without a snapshot): checked from its first message on.
   */
  readonly from: number | undefined;
  readonly messages: readonly RecordedMessage[];
  /** The stream stayed open until the log reached this revision: it must have delivered it. */
  readonly through?: number;
  /** The stream this one resumed (reconnected after), when it is a resumption. */
  readonly resumes?: RecordedStream;
}

/** One log entry: ListContextEvents' (revision, event_id), in (revision, seq) order. */
export interface LoggedEvent {
  readonly revision: number;
  readonly eventId: string;
}

export type WatchProperty = "ordered" | "unique" | "atomic" | "reliable" | "resumable";

export interface WatchViolation {
  readonly property: WatchProperty;
  readonly stream: string;
  readonly detail: string;
}

function logByRevision(log: readonly LoggedEvent[]): Map<number, string[]> {
  const byRevision = new Map<number, string[]>();
  for (const e of log) {
    const ids = byRevision.get(e.revision);
    if (ids) ids.push(e.eventId);
    else byRevision.set(e.revision, [e.eventId]);
  }
  return byRevision;
}

function sameIds(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((id, i) => id === b[i]);
}

function checkStream(stream: RecordedStream, log: Map<number, string[]>, out: WatchViolation[]): void {
  const v = (property: WatchProperty, detail: string): void => void out.push({ property, stream: stream.label, detail });
  const seen = new Set<number>();
  let previous: number | undefined;
  for (const [i, m] of stream.messages.entries()) {
    if (seen.has(m.revision)) v("unique", `revision ${m.revision} delivered again (message ${i})`);
    else if (previous !== undefined && m.revision < previous) v("ordered", `revision ${m.revision} after ${previous} (message ${i})`);
    seen.add(m.revision);
    const logged = log.get(m.revision);
    if (logged === undefined) v("atomic", `revision ${m.revision} is not in the log`);
    else if (!sameIds(m.eventIds, logged)) {
      v("atomic", `revision ${m.revision} delivered [${m.eventIds.join(", ")}], the log has [${logged.join(", ")}]`);
    }
    if (previous !== undefined && m.revision > previous + 1) v("reliable", `gap: revisions ${previous + 1}..${m.revision - 1} missing`);
    previous = m.revision > (previous ?? 0) ? m.revision : previous;
  }
  const first = stream.messages[0]?.revision;
  if (stream.from !== undefined && first !== undefined && first > stream.from) {
    v("reliable", `started at ${first}, revisions ${stream.from}..${first - 1} missing`);
  }
  if (stream.from !== undefined && first !== undefined && first < stream.from) v("reliable", `started at ${first}, before its start ${stream.from}`);
  if (stream.through !== undefined && (previous ?? 0) < stream.through) {
    v("reliable", `stayed open through revision ${stream.through} but delivered only up to ${previous ?? "nothing"}`);
  }
  if (stream.resumes !== undefined) checkResumption(stream, stream.resumes, v);
}

function checkResumption(stream: RecordedStream, earlier: RecordedStream, v: (p: WatchProperty, d: string) => void): void {
  const lastBefore = earlier.messages[earlier.messages.length - 1]?.revision ?? (earlier.from ?? 1) - 1;
  if (stream.from === undefined) return v("resumable", `resumed ${earlier.label} without a start revision`);
  if (stream.from > lastBefore + 1) v("resumable", `resumed from ${stream.from}, after ${earlier.label}'s last revision ${lastBefore}: ${lastBefore + 1}..${stream.from - 1} lost`);
  const before = new Map(earlier.messages.map((m) => [m.revision, m.eventIds]));
  for (const m of stream.messages) {
    const old = before.get(m.revision);
    if (old !== undefined && !sameIds(old, m.eventIds)) v("resumable", `revision ${m.revision} differs from ${earlier.label}'s`);
  }
}

/** Every violation of the five properties by `streams` against `log`; empty when they all hold. */
export function checkWatchStreams(log: readonly LoggedEvent[], streams: readonly RecordedStream[]): WatchViolation[] {
  const byRevision = logByRevision(log);
  const out: WatchViolation[] = [];
  for (const stream of streams) checkStream(stream, byRevision, out);
  return out;
}

/** Throws an Error listing the violations (the first 20) when there are any. */
export function assertWatchStreams(log: readonly LoggedEvent[], streams: readonly RecordedStream[]): void {
  const violations = checkWatchStreams(log, streams);
  if (violations.length === 0) return;
  const lines = violations.slice(0, 20).map((x) => `  ${x.property} — ${x.stream}: ${x.detail}`);
  throw new Error(`watch validator: ${violations.length} violation(s) over ${streams.length} stream(s):\n${lines.join("\n")}`);
}
