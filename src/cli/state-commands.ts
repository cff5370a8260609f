/**
 * `mplp-context state get|set`: read the shared state (latest or at a revision) and change
 * variables at dotted paths, optionally guarded by --expected-revision.
 */
import { fromJson, toJson, type JsonValue } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import { GetSharedStateResponseSchema, SharedStateSchema, StateOperation, UpdateSharedStateResponseSchema, type StateChangeInit } from "../sdk/index.js";
import { required, revisionOf, UsageError } from "./options.js";
import { callOptions, type Command, type Session } from "./session.js";

/**
 * `path=value`: the value is JSON when it parses (`n=2`, `ok=true`, `plan={"a":1}`), else the
 * text itself (`owner=bob`), so the common case needs no shell quoting of JSON strings.
 */
export function assignmentOf(text: string): StateChangeInit {
  const at = text.indexOf("=");
  if (at <= 0) throw new UsageError(`"${text}" is not <path>=<value>`);
  const raw = text.slice(at + 1);
  let json: JsonValue;
  try {
    json = JSON.parse(raw) as JsonValue;
  } catch {
    json = raw;
  }
  return { operation: StateOperation.SET, path: text.slice(0, at), value: fromJson(ValueSchema, json) };
}

const get: Command = async (session, args) => {
  const contextId = required(args, 0, "<context-id>");
  const revision = revisionOf("--revision", session.cli.flags.revision);
  const response = await session.client.contexts.getSharedState({ contextId, revision }, callOptions(session));
  if (session.out.json) return session.out.message(GetSharedStateResponseSchema, response);
  session.out.line(session.out.paint("dim", `revision ${response.revision} checksum ${response.checksum}`));
  const state = response.sharedState === undefined ? {} : toJson(SharedStateSchema, response.sharedState);
  session.out.line(JSON.stringify(state, null, 2));
};

const set: Command = async (session, args) => {
  const contextId = required(args, 0, "<context-id>");
  const { flags } = session.cli;
  const changes: StateChangeInit[] = [
    ...args.slice(1).map(assignmentOf),
    ...(flags.delete ?? []).map((path): StateChangeInit => ({ operation: StateOperation.DELETE, path })),
  ];
  if (changes.length === 0) throw new UsageError("state set wants at least one <path>=<value> or --delete <path>");
  const response = await session.client.contexts.updateSharedState(
    { contextId, changes, expectedRevision: revisionOf("--expected-revision", flags["expected-revision"]), requestId: flags["request-id"] ?? "" },
    callOptions(session),
  );
  if (session.out.json) return session.out.message(UpdateSharedStateResponseSchema, response);
  session.out.line(`updated shared state of ${contextId}: revision ${response.revision} checksum ${response.checksum}`);
};

const COMMANDS: Record<string, Command> = { get, set };

/** `state <sub> …` */
export const stateCommand: Command = async (session: Session, args) => {
  const [sub, ...rest] = args;
  const command = sub === undefined ? undefined : COMMANDS[sub];
  if (command === undefined) throw new UsageError(`state wants one of ${Object.keys(COMMANDS).join("|")}${sub === undefined ? "" : `, not "${sub}"`}`);
  await command(session, rest);
};
