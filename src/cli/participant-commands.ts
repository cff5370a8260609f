/**
 * `mplp-context participants list|add|remove`.
 */
import { ListParticipantsResponseSchema, ParticipantSchema, ParticipantStatus, ParticipantType, type Participant } from "../sdk/index.js";
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

const COMMANDS: Record<string, Command> = { list, add, remove };

/** `participants <sub> …` */
export const participantsCommand: Command = async (session: Session, args) => {
  const [sub, ...rest] = args;
  const command = sub === undefined ? undefined : COMMANDS[sub];
  if (command === undefined) throw new UsageError(`participants wants one of ${Object.keys(COMMANDS).join("|")}${sub === undefined ? "" : `, not "${sub}"`}`);
  await command(session, rest);
};
