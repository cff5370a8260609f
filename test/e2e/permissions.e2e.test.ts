/**
 * The permission matrix, on PGlite and on Postgres: every method of both services, called over the
 * wire by each kind of caller, against the contract's allow / deny kept as tables below.
 *
 * "allow" means the call succeeds; "deny" means PERMISSION_DENIED with reason FORBIDDEN. Any other
 * outcome is shown in the diff as it came back (e.g. "failed: NOT_FOUND CONTEXT_NOT_FOUND").
 * For ListContexts and GetContextStatistics, which never deny, "allow" means the context is
 * listed / counted for the caller and "deny" that it is not.
 *
 * WatchContext is a stream: "allow" means it opens and delivers its first message (the snapshot,
 * asked for with send_snapshot); "deny" that it ends with PERMISSION_DENIED/FORBIDDEN instead.
 *
 * Each cell starts from an empty database: alice creates the context (PUBLIC only in the
 * public-outsider column, PRIVATE otherwise) and adds ada (admin), cody (contributor), rita
 * (reviewer), vic (viewer) and tess (viewer, the "other participant" acted upon).
 */
import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ContextStatus, ContextType, JoinPolicy, Visibility } from "../../gen/mplp/context/v1/context_pb.js";
import { ContextService } from "../../gen/mplp/context/v1/context_service_pb.js";
import { ParticipantService } from "../../gen/mplp/context/v1/participant_service_pb.js";
import { StateOperation } from "../../gen/mplp/context/v1/shared_state_pb.js";
import { errorDetails } from "../../src/transport/grpc-client.js";
import { valueOut } from "../../src/transport/proto-values.js";
import { resetDatabase } from "../support/databases.js";
import { describeOnApps, type AppUnderTest } from "./support/app.js";
import { failure } from "./support/failure.js";
import { as, createContext, identifyCallersWith, type ContextClient, type Identify, type ParticipantClient } from "./support/participants.js";
import { bearer, JWT_ENV, tokenFor } from "./support/tokens.js";

/** Parses a whitespace-aligned table: the first line names the columns, each other line is one row. */
function table(text: string): Map<string, Record<string, string>> {
  const [header, ...lines] = text
    .trim()
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "");
  const columns = header!.split(/\s+/).slice(1);
  const rows = new Map<string, Record<string, string>>();
  for (const line of lines) {
    const cells = line.split(/\s+/);
    const values = cells.slice(-columns.length);
    const name = cells.slice(0, cells.length - columns.length).join(" ");
    rows.set(name, Object.fromEntries(columns.map((c, i) => [c, values[i]!])));
  }
  return rows;
}

// The contract (shared/API.md "Permissions"): owner all; admin all; contributor READ+WRITE;
// reviewer and viewer READ; outsiders READ on PUBLIC only; others' memberships need MANAGE_PARTICIPANTS.
// Shared state: UpdateSharedState needs WRITE; GetSharedState and WatchContext need READ.
const ON_THE_CONTEXT = table(`
  method                                    owner  admin  contributor  reviewer  viewer  private-outsider  public-outsider
  CreateContext                             allow  allow  allow        allow     allow   allow             allow
  BatchCreateContexts                       allow  allow  allow        allow     allow   allow             allow
  GetContext                                allow  allow  allow        allow     allow   deny              allow
  UpdateContext (description)               allow  allow  allow        deny      deny    deny              deny
  UpdateContext (access_control)            allow  allow  deny         deny      deny    deny              deny
  DeleteContext                             allow  allow  deny         deny      deny    deny              deny
  ListContexts (lists it)                   allow  allow  allow        allow     allow   deny              allow
  TransitionContext                         allow  allow  allow        deny      deny    deny              deny
  GetContextStatistics (counts it)          allow  allow  allow        allow     allow   deny              allow
  ListContextEvents                         allow  allow  allow        allow     allow   deny              allow
  UpdateSharedState                         allow  allow  allow        deny      deny    deny              deny
  GetSharedState                            allow  allow  allow        allow     allow   deny              allow
  WatchContext (opens, first message)       allow  allow  allow        allow     allow   deny              allow
  AddParticipant (another agent)            allow  allow  deny         deny      deny    deny              deny
  BatchAddParticipants (other agents)       allow  allow  deny         deny      deny    deny              deny
  GetParticipant (another)                  allow  allow  allow        allow     allow   deny              allow
  UpdateParticipant (another's name)        allow  allow  deny         deny      deny    deny              deny
  UpdateParticipant (another's roles)       allow  allow  deny         deny      deny    deny              deny
  RemoveParticipant (another)               allow  allow  deny         deny      deny    deny              deny
  ListParticipants                          allow  allow  allow        allow     allow   deny              allow
  Heartbeat (another)                       allow  allow  deny         deny      deny    deny              deny
  KeepAlive (another)                       allow  allow  deny         deny      deny    deny              deny
`);

// A member acting on its own membership.
const ON_ITS_OWN_MEMBERSHIP = table(`
  method                                              admin  contributor  reviewer  viewer
  UpdateParticipant (own name, capabilities, metadata) allow  allow        allow     allow
  UpdateParticipant (own roles)                       allow  deny         deny      deny
  RemoveParticipant (itself)                          allow  allow        allow     allow
  Heartbeat (itself)                                  allow  allow        allow     allow
  KeepAlive (itself)                                  allow  allow        allow     allow
`);

/** Who plays each column. */
const PRINCIPAL: Readonly<Record<string, string>> = {
  owner: "alice",
  admin: "ada",
  contributor: "cody",
  reviewer: "rita",
  viewer: "vic",
  "private-outsider": "otto",
  "public-outsider": "pete",
};
const MEMBERS = [
  { agentId: "ada", roles: ["admin"] },
  { agentId: "cody", roles: ["contributor"] },
  { agentId: "rita", roles: ["reviewer"] },
  { agentId: "vic", roles: ["viewer"] },
  { agentId: "tess", roles: ["viewer"] },
];

interface Scene {
  readonly contexts: ContextClient;
  readonly participants: ParticipantClient;
  readonly contextId: string;
  /** participant_id by agent_id */
  readonly ids: Readonly<Record<string, string>>;
  /** The caller's principal. */
  readonly caller: string;
  readonly options: ReturnType<typeof as>;
}

/** What a probe says: a call (allow unless it fails), or a visibility check. */
type Probe = (scene: Scene) => Promise<unknown>;
const visible = (seen: boolean): string => (seen ? "allow" : "deny");

/** Opens a KeepAlive stream for `participantId`, sends one renewal and takes one answer. */
async function keepAliveOnce(scene: Scene, participantId: string): Promise<void> {
  async function* one(): AsyncGenerator<{ contextId: string; participantId: string }> {
    yield { contextId: scene.contextId, participantId };
  }
  for await (const response of scene.participants.keepAlive(one(), scene.options)) {
    if (response.participantId !== participantId) throw new Error(`KeepAlive answered for ${response.participantId}`);
    return;
  }
  throw new Error("KeepAlive ended without an answer");
}

/** Opens a WatchContext stream with a snapshot, takes its first message and cancels the stream. */
async function watchOnce(scene: Scene): Promise<void> {
  for await (const { response } of scene.contexts.watchContext({ contextId: scene.contextId, sendSnapshot: true }, scene.options)) {
    if (response.case !== "snapshot") throw new Error(`WatchContext sent ${response.case ?? "an empty message"} first, not the snapshot`);
    if (response.value.context?.contextId !== scene.contextId) throw new Error(`WatchContext's snapshot is of ${response.value.context?.contextId}`);
    return; // leaving the loop cancels the call
  }
  throw new Error("WatchContext ended without a message");
}

const CONTEXT_PROBES: Readonly<Record<string, Probe>> = {
  CreateContext: (s) => s.contexts.createContext({ context: { name: "mine", type: ContextType.PIPELINE } }, s.options),
  BatchCreateContexts: (s) => s.contexts.batchCreateContexts({ requests: [{ context: { name: "mine", type: ContextType.PIPELINE } }] }, s.options),
  GetContext: (s) => s.contexts.getContext({ contextId: s.contextId }, s.options),
  "UpdateContext (description)": (s) =>
    s.contexts.updateContext({ context: { contextId: s.contextId, description: "changed" }, updateMask: { paths: ["description"] } }, s.options),
  "UpdateContext (access_control)": (s) =>
    s.contexts.updateContext(
      { context: { contextId: s.contextId, accessControl: { joinPolicy: JoinPolicy.OPEN } }, updateMask: { paths: ["access_control.join_policy"] } },
      s.options,
    ),
  DeleteContext: (s) => s.contexts.deleteContext({ contextId: s.contextId, force: true }, s.options),
  "ListContexts (lists it)": async (s) => {
    const page = await s.contexts.listContexts({ pageSize: 1000 }, s.options);
    return visible(page.contexts.some((c) => c.contextId === s.contextId));
  },
  TransitionContext: (s) => s.contexts.transitionContext({ contextId: s.contextId, target: { case: "status", value: ContextStatus.PAUSED } }, s.options),
  "GetContextStatistics (counts it)": async (s) => {
    // The database holds this one context only.
    const stats = await s.contexts.getContextStatistics({}, s.options);
    return visible(stats.totalContexts === 1n && stats.totalParticipants === BigInt(MEMBERS.length));
  },
  ListContextEvents: (s) => s.contexts.listContextEvents({ contextId: s.contextId }, s.options),
  UpdateSharedState: (s) =>
    s.contexts.updateSharedState({ contextId: s.contextId, changes: [{ operation: StateOperation.SET, path: "plan.step", value: valueOut(1) }] }, s.options),
  GetSharedState: (s) => s.contexts.getSharedState({ contextId: s.contextId }, s.options),
  "WatchContext (opens, first message)": watchOnce,
  "AddParticipant (another agent)": (s) => s.participants.addParticipant({ contextId: s.contextId, participant: { agentId: "newbie" } }, s.options),
  "BatchAddParticipants (other agents)": (s) =>
    s.participants.batchAddParticipants({ contextId: s.contextId, participants: [{ agentId: "newbie-1" }, { agentId: "newbie-2" }] }, s.options),
  "GetParticipant (another)": (s) => s.participants.getParticipant({ contextId: s.contextId, participantId: s.ids["tess"]! }, s.options),
  "UpdateParticipant (another's name)": (s) =>
    s.participants.updateParticipant(
      { participant: { contextId: s.contextId, participantId: s.ids["tess"]!, displayName: "renamed" }, updateMask: { paths: ["display_name"] } },
      s.options,
    ),
  "UpdateParticipant (another's roles)": (s) =>
    s.participants.updateParticipant(
      { participant: { contextId: s.contextId, participantId: s.ids["tess"]!, roles: ["reviewer"] }, updateMask: { paths: ["roles"] } },
      s.options,
    ),
  "RemoveParticipant (another)": (s) => s.participants.removeParticipant({ contextId: s.contextId, participantId: s.ids["tess"]!, reason: "test" }, s.options),
  ListParticipants: (s) => s.participants.listParticipants({ contextId: s.contextId }, s.options),
  "Heartbeat (another)": (s) => s.participants.heartbeat({ contextId: s.contextId, participantId: s.ids["tess"]! }, s.options),
  "KeepAlive (another)": (s) => keepAliveOnce(s, s.ids["tess"]!),
};

const SELF_PROBES: Readonly<Record<string, Probe>> = {
  "UpdateParticipant (own name, capabilities, metadata)": (s) =>
    s.participants.updateParticipant(
      {
        participant: { contextId: s.contextId, participantId: s.ids[s.caller]!, displayName: "me", capabilities: ["x"], metadata: { mood: "fine" } },
        updateMask: { paths: ["display_name", "capabilities", "metadata"] },
      },
      s.options,
    ),
  "UpdateParticipant (own roles)": (s) =>
    s.participants.updateParticipant(
      { participant: { contextId: s.contextId, participantId: s.ids[s.caller]!, roles: ["admin", "planner"] }, updateMask: { paths: ["roles"] } },
      s.options,
    ),
  "RemoveParticipant (itself)": (s) => s.participants.removeParticipant({ contextId: s.contextId, participantId: s.ids[s.caller]!, reason: "leaving" }, s.options),
  "Heartbeat (itself)": (s) => s.participants.heartbeat({ contextId: s.contextId, participantId: s.ids[s.caller]! }, s.options),
  "KeepAlive (itself)": (s) => keepAliveOnce(s, s.ids[s.caller]!),
};

/** Runs one probe and names its outcome as the tables do. */
async function outcome(probe: Probe, scene: Scene): Promise<string> {
  try {
    const result = await probe(scene);
    return typeof result === "string" ? result : "allow";
  } catch (error) {
    const e = errorDetails(error);
    if (e.code === status.PERMISSION_DENIED) return e.reason === "FORBIDDEN" ? "deny" : `deny without FORBIDDEN (reason ${e.reason})`;
    return `failed: ${status[e.code]} ${e.reason ?? ""} (${e.message})`;
  }
}

/** Declares the whole matrix for an app started with `env`, its callers named by `identify`. */
async function permissionMatrix(title: string, env: Readonly<Record<string, string>>, identify: Identify | undefined): Promise<void> {
  await describeOnApps(title, (under) => suite(under, identify), { env });
}

function suite(under: AppUnderTest, identify: Identify | undefined): void {
  if (identify !== undefined) {
    let restore = (): void => {};
    beforeAll(() => {
      restore = identifyCallersWith(identify);
    });
    afterAll(() => restore());
  }

  /** Empties the database and sets the scene for one cell. */
  async function scene(column: string): Promise<Scene> {
    await resetDatabase(under.app().database);
    const contexts = under.client(ContextService);
    const participants = under.client(ParticipantService);
    const visibility = column === "public-outsider" ? Visibility.PUBLIC : Visibility.PRIVATE;
    const c = await createContext(contexts, "alice", "matrix", { accessControl: { visibility } });
    const added = await participants.batchAddParticipants({ contextId: c.contextId, participants: MEMBERS }, as("alice"));
    const ids = Object.fromEntries(added.participants.map((p) => [p.agentId, p.participantId]));
    const caller = PRINCIPAL[column]!;
    return { contexts, participants, contextId: c.contextId, ids, caller, options: as(caller) };
  }

  describe("on the context and on other participants", () => {
    for (const [method, expected] of ON_THE_CONTEXT) {
      it(`${method}: ${Object.values(expected).join(" ")}`, async () => {
        const probe = CONTEXT_PROBES[method];
        if (!probe) throw new Error(`no probe for ${method}`);
        const actual: Record<string, string> = {};
        for (const column of Object.keys(expected)) actual[column] = await outcome(probe, await scene(column));
        expect(actual).toEqual(expected);
      });
    }
  });

  describe("on its own membership", () => {
    for (const [method, expected] of ON_ITS_OWN_MEMBERSHIP) {
      it(`${method}: ${Object.values(expected).join(" ")}`, async () => {
        const probe = SELF_PROBES[method];
        if (!probe) throw new Error(`no probe for ${method}`);
        const actual: Record<string, string> = {};
        for (const column of Object.keys(expected)) actual[column] = await outcome(probe, await scene(column));
        expect(actual).toEqual(expected);
      });
    }
  });

  describe("membership grants reading", () => {
    it("shows a PRIVATE context to its members in ListContexts and GetContextStatistics, and stops when they leave", async () => {
      const contexts = under.client(ContextService);
      const participants = under.client(ParticipantService);
      const c = await createContext(contexts, "alice", "private");
      await createContext(contexts, "alice", "other-private");
      const listed = async () => (await contexts.listContexts({}, as("bob"))).contexts.map((x) => x.name);
      expect(await listed()).toEqual([]);
      const { participant } = await participants.addParticipant({ contextId: c.contextId, participant: { agentId: "bob", roles: ["viewer"] } }, as("alice"));
      expect(await listed()).toEqual(["private"]);
      expect((await contexts.getContextStatistics({}, as("bob"))).totalContexts).toBe(1n);
      await participants.removeParticipant({ contextId: c.contextId, participantId: participant!.participantId }, as("bob"));
      expect(await listed()).toEqual([]);
      const err = await failure(contexts.getContext({ contextId: c.contextId }, as("bob")));
      expect([err.code, err.reason]).toEqual([status.PERMISSION_DENIED, "FORBIDDEN"]);
    });
  });
}

await permissionMatrix("the permission matrix over gRPC", {}, undefined);
// Tokens are made once per principal: the matrix calls thousands of times, the signature is the same.
const tokens = new Map<string, string>();
await permissionMatrix("the permission matrix over gRPC with JWTs", JWT_ENV, (principal) => {
  let token = tokens.get(principal);
  if (token === undefined) tokens.set(principal, (token = tokenFor(principal)));
  return bearer(token);
});
