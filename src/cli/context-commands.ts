/**
 * `mplp-context contexts list|get|create|pause|resume|delete`.
 */
import { toJson } from "@bufbuild/protobuf";
import {
  ContextStatus,
  ContextType,
  ContextView,
  JoinPolicy,
  LifecycleStage,
  ParticipantStatus,
  Visibility,
  ContextSchema,
  GetContextResponseSchema,
  ListContextsResponseSchema,
  SharedStateSchema,
  type Context,
} from "../sdk/index.js";
import { enumName, timeOf, type Output } from "./output.js";
import { enumValue, required, revisionOf, UsageError, wholeNumber } from "./options.js";
import { callOptions, type Command, type Session } from "./session.js";

function contextRow(c: Context): string[] {
  return [
    c.contextId,
    c.name,
    enumName(ContextType, c.type),
    enumName(ContextStatus, c.status),
    enumName(LifecycleStage, c.lifecycleStage),
    String(c.revision),
    String(c.participantCount),
  ];
}

/** The detail view of one context. */
function showContext(out: Output, c: Context): void {
  out.fields([
    ["context", c.contextId],
    ["name", c.name],
    ["description", c.description === "" ? "-" : c.description],
    ["type", enumName(ContextType, c.type)],
    ["status", enumName(ContextStatus, c.status)],
    ["stage", enumName(LifecycleStage, c.lifecycleStage)],
    ["owner", c.accessControl?.owner ?? "-"],
    ["visibility", enumName(Visibility, c.accessControl?.visibility ?? 0)],
    ["join policy", enumName(JoinPolicy, c.accessControl?.joinPolicy ?? 0)],
    ["revision", String(c.revision)],
    ["participants", String(c.participantCount)],
    ["created", timeOf(c.createdAt)],
    ["updated", timeOf(c.updatedAt)],
    ["expires", timeOf(c.expiresAt)],
  ]);
}

const list: Command = async (session) => {
  const { flags } = session.cli;
  const filter = {
    ...(flags.status === undefined ? {} : { status: enumValue(ContextStatus, "--status", flags.status) }),
    ...(flags.type === undefined ? {} : { type: enumValue(ContextType, "--type", flags.type) }),
    ...(flags["name-prefix"] === undefined ? {} : { namePrefix: flags["name-prefix"] }),
  };
  const pageSize = flags["page-size"] === undefined ? 100 : wholeNumber("--page-size", flags["page-size"]);
  const response = await session.client.contexts.listContexts({ filter, pageSize }, callOptions(session));
  if (session.out.json) return session.out.message(ListContextsResponseSchema, response);
  session.out.table(["CONTEXT", "NAME", "TYPE", "STATUS", "STAGE", "REV", "PARTICIPANTS"], response.contexts.map(contextRow));
  if (response.nextPageToken !== "") session.out.notice(`(${response.contexts.length} of ${response.totalSize}; raise --page-size for more)`);
};

const get: Command = async (session, args) => {
  const contextId = required(args, 0, "<context-id>");
  const view = session.cli.flags.full ? ContextView.FULL : ContextView.BASIC;
  const response = await session.client.contexts.getContext({ contextId, view }, callOptions(session));
  if (session.out.json) return session.out.message(GetContextResponseSchema, response);
  if (response.context) showContext(session.out, response.context);
  if (session.cli.flags.full) {
    // The FULL view: the shared state (as `state get` prints it: proto3 JSON), then the participants.
    session.out.line();
    session.out.line(session.out.paint("bold", "shared state:"));
    const state = response.context?.sharedState;
    session.out.line(JSON.stringify(state === undefined ? {} : toJson(SharedStateSchema, state), null, 2));
    session.out.line();
    session.out.table(
      ["PARTICIPANT", "AGENT", "STATUS", "ROLES", "LEASE EXPIRES"],
      response.participants.map((p) => [p.participantId, p.agentId, enumName(ParticipantStatus, p.status), p.roles.join(","), timeOf(p.leaseExpiresAt)]),
    );
  }
};

const create: Command = async (session, args) => {
  const name = required(args, 0, "<name>");
  const { flags } = session.cli;
  const context = {
    name,
    type: enumValue(ContextType, "--type", flags.type ?? "collaborative"),
    description: flags.description ?? "",
    accessControl: {
      visibility: flags.public ? Visibility.PUBLIC : Visibility.PRIVATE,
      joinPolicy: flags.open ? JoinPolicy.OPEN : JoinPolicy.INVITATION_ONLY,
    },
  };
  // A request id makes a retried create (ours, or the user's re-run with the same --request-id) create nothing twice.
  const response = await session.client.contexts.createContext({ context, requestId: flags["request-id"] ?? "" }, callOptions(session));
  if (session.out.json) return session.out.message(ContextSchema, response.context!);
  session.out.line(`created context ${response.context?.contextId} "${name}" (revision ${response.context?.revision})`);
};

function transition(target: ContextStatus, verb: string): Command {
  return async (session, args) => {
    const contextId = required(args, 0, "<context-id>");
    const { flags } = session.cli;
    const response = await session.client.contexts.transitionContext(
      {
        contextId,
        target: { case: "status", value: target },
        expectedRevision: revisionOf("--expected-revision", flags["expected-revision"]),
        reason: flags.reason ?? "",
      },
      callOptions(session),
    );
    if (session.out.json) return session.out.message(ContextSchema, response.context!);
    session.out.line(`${verb} context ${contextId}: status ${enumName(ContextStatus, response.context?.status ?? 0)} (revision ${response.context?.revision})`);
  };
}

const remove: Command = async (session, args) => {
  const contextId = required(args, 0, "<context-id>");
  const { flags } = session.cli;
  await session.client.contexts.deleteContext(
    { contextId, force: flags.force, expectedRevision: revisionOf("--expected-revision", flags["expected-revision"]) },
    callOptions(session),
  );
  if (session.out.json) return session.out.line(JSON.stringify({ deleted: contextId }));
  session.out.line(`deleted context ${contextId}`);
};

const COMMANDS: Record<string, Command> = {
  list,
  get,
  create,
  pause: transition(ContextStatus.PAUSED, "paused"),
  resume: transition(ContextStatus.ACTIVE, "resumed"),
  delete: remove,
};

/** `contexts <sub> …` */
export const contextsCommand: Command = async (session: Session, args) => {
  const [sub, ...rest] = args;
  const command = sub === undefined ? undefined : COMMANDS[sub];
  if (command === undefined) throw new UsageError(`contexts wants one of ${Object.keys(COMMANDS).join("|")}${sub === undefined ? "" : `, not "${sub}"`}`);
  await command(session, rest);
};
