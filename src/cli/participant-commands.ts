/**
 * `mplp-context participants list|add|remove|heartbeat|keepalive`. A participant's presence is a
 * lease (PRESENCE_TTL_MS on the server, 30 s by default) that only renewals extend: `heartbeat`
 * renews it once, `keepalive` holds a KeepAlive stream that renews it until Ctrl-C.
 */
import {
  describeError,
  HeartbeatResponseSchema,
  KeepAliveResponseSchema,
  ListParticipantsResponseSchema,
  ParticipantSchema,
  ParticipantStatus,
  ParticipantType,
  type Participant,
} from "../sdk/index.js";
import { enumName, timeOf } from "./output.js";
import { enumValue, required, UsageError, wholeNumber } from "./options.js";
import { callOptions, type Command, type Session } from "./session.js";

function participantRow(p: Participant): string[] {
  return [
    p.participantId,
    p.agentId,
    enumName(ParticipantType, p.participantType),
    enumName(ParticipantStatus, p.status),
    p.roles.join(","),
    timeOf(p.leaseExpiresAt),
  ];
}

const list: Command = async (session, args) => {
  const contextId = required(args, 0, "<context-id>");
  const { flags } = session.cli;
  const filter = flags.status === undefined ? {} : { status: enumValue(ParticipantStatus, "--status", flags.status) };
  const pageSize = flags["page-size"] === undefined ? 1000 : wholeNumber("--page-size", flags["page-size"]);
  const response = await session.client.participants.listParticipants({ contextId, filter, pageSize }, callOptions(session));
  if (session.out.json) return session.out.message(ListParticipantsResponseSchema, response);
  session.out.table(["PARTICIPANT", "AGENT", "TYPE", "STATUS", "ROLES", "LEASE EXPIRES"], response.participants.map(participantRow));
};

const add: Command = async (session, args) => {
  const contextId = required(args, 0, "<context-id>");
  const agentId = required(args, 1, "<agent-id>");
  const { flags } = session.cli;
  const participant = {
    agentId,
    participantType: enumValue(ParticipantType, "--type", flags.type ?? "agent"),
    displayName: flags["display-name"] ?? "",
    roles: flags.role ?? [],
    capabilities: flags.capability ?? [],
  };
  const response = await session.client.participants.addParticipant({ contextId, participant, requestId: flags["request-id"] ?? "" }, callOptions(session));
  if (session.out.json) return session.out.message(ParticipantSchema, response.participant!);
  const p = response.participant;
  session.out.line(`added participant ${p?.participantId} (agent ${agentId}, roles ${p?.roles.join(",")}) to context ${contextId}`);
};

const remove: Command = async (session, args) => {
  const contextId = required(args, 0, "<context-id>");
  const participantId = required(args, 1, "<participant-id>");
  await session.client.participants.removeParticipant({ contextId, participantId, reason: session.cli.flags.reason ?? "" }, callOptions(session));
  if (session.out.json) return session.out.line(JSON.stringify({ removed: participantId, contextId }));
  session.out.line(`removed participant ${participantId} from context ${contextId}`);
};

const heartbeat: Command = async (session, args) => {
  const contextId = required(args, 0, "<context-id>");
  const participantId = required(args, 1, "<participant-id>");
  const response = await session.client.participants.heartbeat({ contextId, participantId }, callOptions(session));
  if (session.out.json) return session.out.message(HeartbeatResponseSchema, response);
  session.out.line(`renewed participant ${participantId} of context ${contextId}: ${enumName(ParticipantStatus, response.status)}, lease until ${timeOf(response.leaseExpiresAt)}`);
};

/** Resolves when `signal` aborts (Ctrl-C, SIGTERM). */
function abortedOf(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener("abort", () => resolve(), { once: true });
  });
}

/**
 * Holds a KeepAlive stream until Ctrl-C: one line once the participant is present, one when the
 * stream is lost and one when it is back (reconnects wait at most 2 s), one when it stops. A
 * refusal (the participant was removed, or the caller may not renew it) ends it with exit code 1.
 */
const keepalive: Command = async (session, args) => {
  const contextId = required(args, 0, "<context-id>");
  const participantId = required(args, 1, "<participant-id>");
  const { flags } = session.cli;
  const intervalMs = flags.interval === undefined ? 10_000 : wholeNumber("--interval", flags.interval);
  if (intervalMs === 0) throw new UsageError("--interval must be at least 1 ms");
  const { out } = session;
  let present = false;
  let lost = false;
  const presence = session.client.keepPresence(contextId, participantId, {
    intervalMs,
    backoff: { initialMs: 200, maxMs: 2_000 },
    onRenewed: (response) => {
      const lease = `${enumName(ParticipantStatus, response.status)}, lease until ${timeOf(response.leaseExpiresAt)}`;
      if (!present) {
        present = true;
        if (out.json) out.message(KeepAliveResponseSchema, response, true);
        else out.line(`keeping participant ${participantId} of context ${contextId} present: ${lease}; renewing every ${intervalMs} ms until Ctrl-C`);
      } else if (lost) {
        lost = false;
        out.notice(out.paint("dim", `keepalive: reconnected; ${lease}`));
      }
    },
    onReconnect: ({ error }) => {
      if (lost) return;
      lost = true;
      out.notice(out.paint("dim", `keepalive: disconnected (${describeError(error)}); retrying until a server takes the stream back`));
    },
  });
  try {
    // Ends on Ctrl-C/SIGTERM, or rejects with the refusal that stopped the renewals.
    await Promise.race([presence.done, abortedOf(session.signal)]);
  } finally {
    await presence.stop();
  }
  const last = presence.last;
  if (out.json) return out.line(JSON.stringify({ stopped: participantId, contextId, leaseExpiresAt: last === undefined ? null : timeOf(last.leaseExpiresAt) }));
  out.line(`stopped renewing participant ${participantId}; its lease runs out at ${timeOf(last?.leaseExpiresAt)}, then it is INACTIVE`);
};

const COMMANDS: Record<string, Command> = { list, add, remove, heartbeat, keepalive };

/** `participants <sub> …` */
export const participantsCommand: Command = async (session: Session, args) => {
  const [sub, ...rest] = args;
  const command = sub === undefined ? undefined : COMMANDS[sub];
  if (command === undefined) throw new UsageError(`participants wants one of ${Object.keys(COMMANDS).join("|")}${sub === undefined ? "" : `, not "${sub}"`}`);
  await command(session, rest);
};
