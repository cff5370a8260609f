/**
 * `mplp-context events` (the audit trail, every page) and `mplp-context watch` (live). Both print
 * one line per event (or one JSON object per line with --json). `watch` runs until the context is
 * deleted or the process is interrupted; when the connection drops it says so on stderr (one line),
 * retries every ≤ 2 s, says so again (one line, with the revision) once a server takes the stream
 * back, and resumes from the last revision it printed + 1: no gap and no repeat across a restart.
 */
import { ContextEventSchema, ContextStatus, describeError, type ContextEvent } from "../sdk/index.js";
import { eventLine } from "./event-line.js";
import { enumName } from "./output.js";
import { required, revisionOf } from "./options.js";
import { callOptions, type Command, type Session } from "./session.js";

function printEvent(session: Session, event: ContextEvent): void {
  if (session.out.json) session.out.message(ContextEventSchema, event, true);
  else session.out.line(eventLine(event, session.out));
}

/** `events <context-id> [--from N]`: ListContextEvents, oldest first, through every page. */
export const eventsCommand: Command = async (session, args) => {
  const contextId = required(args, 0, "<context-id>");
  const startRevision = revisionOf("--from", session.cli.flags.from);
  let pageToken = "";
  do {
    const page = await session.client.contexts.listContextEvents({ contextId, startRevision, pageSize: 1000, pageToken }, callOptions(session));
    for (const event of page.events) printEvent(session, event);
    pageToken = page.nextPageToken;
  } while (pageToken !== "");
};

/** `watch <context-id> [--from N] [--snapshot]` */
export const watchCommand: Command = async (session, args) => {
  const contextId = required(args, 0, "<context-id>");
  const { flags } = session.cli;
  let lost = false;
  const updates = session.client.watch(contextId, {
    startRevision: revisionOf("--from", flags.from),
    sendSnapshot: flags.snapshot,
    signal: session.signal,
    // A person is waiting: retry quickly, and never less often than every 2 s, rather than back off to minutes.
    backoff: { initialMs: 200, maxMs: 2_000 },
    // One line when the stream is lost and one when it is back, however many attempts lie between.
    onReconnect: ({ error, fromRevision }) => {
      if (lost) return;
      lost = true;
      session.out.notice(session.out.paint("dim", `watch: disconnected (${describeError(error)}); retrying until a server takes the stream back, then resuming from revision ${fromRevision}`));
    },
    onResumed: ({ fromRevision }) => {
      lost = false;
      session.out.notice(session.out.paint("dim", `watch: reconnected; resumed from revision ${fromRevision}`));
    },
  });
  for await (const update of updates) {
    if (update.kind === "snapshot") {
      const c = update.context;
      if (session.out.json) session.out.line(JSON.stringify({ snapshot: { revision: String(update.revision), contextId: c?.contextId, participants: update.participants.length } }));
      else session.out.line(`snapshot at #${update.revision}: "${c?.name}" ${enumName(ContextStatus, c?.status ?? 0)}, ${update.participants.length} participant(s)`);
      continue;
    }
    for (const event of update.events) printEvent(session, event);
  }
  if (!session.signal.aborted) session.out.notice(`watch: context ${contextId} was deleted; the stream ended`);
};
