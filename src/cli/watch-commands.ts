/**
 * `mplp-context events` (the audit trail, every page) and `mplp-context watch` (live). Both print
 * one line per event (or one JSON object per line with --json). `watch` runs until the context is
 * deleted or the process is interrupted; when the connection drops it says so on stderr (one line),
 * retries every ≤ 2 s, says so again (one line, with the revision) once a server takes the stream
 * back, and resumes from the last revision it printed + 1: no gap and no repeat across a restart.
 * Given several contexts, `watch` follows them all on one Watch stream, each line led by its
 * context id, until every one has ended (or the interrupt).
 */
import { codeName, ContextEventSchema, ContextStatus, describeError, type Context, type ContextEvent, type WatchOptions } from "../sdk/index.js";
import { eventLine } from "./event-line.js";
import { enumName } from "./output.js";
import { required, revisionOf } from "./options.js";
import { callOptions, type Command, type Session } from "./session.js";

/** One event's line; `lead` (the context id, when several are watched) goes first. */
function printEvent(session: Session, event: ContextEvent, lead = ""): void {
  if (session.out.json) session.out.message(ContextEventSchema, event, true);
  else session.out.line(`${lead}${eventLine(event, session.out)}`);
}

function printSnapshot(session: Session, revision: bigint, c: Context | undefined, participants: number, lead = ""): void {
  if (session.out.json) session.out.line(JSON.stringify({ snapshot: { revision: String(revision), contextId: c?.contextId, participants } }));
  else session.out.line(`${lead}snapshot at #${revision}: "${c?.name}" ${enumName(ContextStatus, c?.status ?? 0)}, ${participants} participant(s)`);
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

/** How `watch` follows: from --from or --snapshot, retrying quickly, saying once when lost and once when back. */
function watchOptions(session: Session): WatchOptions {
  const { flags } = session.cli;
  let lost = false;
  return {
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
  };
}

/** `watch <context-id>... [--from N] [--snapshot]` */
export const watchCommand: Command = async (session, args) => {
  const contextId = required(args, 0, "<context-id>");
  if (args.length > 1) return watchSeveral(session, [...new Set(args)]);
  for await (const update of session.client.watch(contextId, watchOptions(session))) {
    if (update.kind === "snapshot") printSnapshot(session, update.revision, update.context, update.participants.length);
    else for (const event of update.events) printEvent(session, event);
  }
  if (!session.signal.aborted) session.out.notice(`watch: context ${contextId} was deleted; the stream ended`);
};

/**
 * Several contexts on one Watch stream: a context that cannot be watched on (deleted, refused)
 * is said on stderr and the others go on; once all have ended, any that ended on an error fails
 * the command.
 */
async function watchSeveral(session: Session, contextIds: readonly string[]): Promise<void> {
  const failed: string[] = [];
  for await (const update of session.client.watchMany(contextIds, watchOptions(session))) {
    const lead = session.out.paint("dim", `${update.contextId} `);
    if (update.kind === "snapshot") printSnapshot(session, update.revision, update.context, update.participants.length, lead);
    else if (update.kind === "events") for (const event of update.events) printEvent(session, event, lead);
    else if (update.code === 0) session.out.notice(`watch: context ${update.contextId} was deleted; its watch ended`);
    else {
      const why = `${codeName(update.code)} ${update.reason}: ${update.message}`;
      failed.push(`${update.contextId} (${why})`);
      session.out.notice(`watch: context ${update.contextId}: ${why}`);
    }
  }
  if (failed.length > 0 && !session.signal.aborted) throw new Error(`${failed.length} of ${contextIds.length} watches ended on an error: ${failed.join("; ")}`);
}
