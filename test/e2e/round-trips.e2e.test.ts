/**
 * How often each method waits for the database, counted by the app's SqlClient (statements, round
 * trips, transactions), on PGlite and on Postgres: every unary method reaches the database at most
 * once when this instance wrote the context before (its base is kept) and at most twice otherwise
 * (the base is read, then the change applied), and a write opens no transaction. A change that adds
 * a round trip to a method fails here. The sweeper and the watch hub's reconcile are idled so
 * only the call's own work is counted.
 */
import { describe, expect, it } from "vitest";
import { ContextStatus, ContextType, ContextView } from "../../gen/mplp/context/v1/context_pb.js";
import { ContextService } from "../../gen/mplp/context/v1/context_service_pb.js";
import { ParticipantService } from "../../gen/mplp/context/v1/participant_service_pb.js";
import { StateOperation } from "../../gen/mplp/context/v1/shared_state_pb.js";
import type { SqlCounters } from "../../src/store/sql-client.js";
import { valueOut } from "../../src/transport/proto-values.js";
import { describeOnApps, type AppUnderTest } from "./support/app.js";
import { as, createContext } from "./support/participants.js";

const alice = as("alice");
const QUIET = { SWEEP_INTERVAL_MS: "600000", WATCH_RECONCILE_MS: "60000" };

type Cost = Pick<SqlCounters, "statements" | "roundTrips" | "transactions">;

/** What `call` cost the database. */
async function costOf(under: AppUnderTest, call: () => Promise<unknown>): Promise<Cost> {
  const before = under.app().database.sql.counters;
  await call();
  const after = under.app().database.sql.counters;
  return {
    statements: after.statements - before.statements,
    roundTrips: after.roundTrips - before.roundTrips,
    transactions: after.transactions - before.transactions,
  };
}

/** A lone statement: one round trip, no transaction. */
const ONE: Cost = { statements: 1, roundTrips: 1, transactions: 0 };
/** Two lone statements: a write's base read, then its change. */
const TWO: Cost = { statements: 2, roundTrips: 2, transactions: 0 };
/**
 * A read behind the READ check on a cold cache: the context (the check) and then the rows asked for.
 * Both are cached reads, each one statement; a hot cache answers the check without the database.
 */
const CHECKED: Cost = TWO;
/** Served from the read cache. */
const NONE: Cost = { statements: 0, roundTrips: 0, transactions: 0 };

function suite(warm: boolean) {
  return (under: AppUnderTest) => {
    const contexts = () => under.client(ContextService);
    const participants = () => under.client(ParticipantService);
    const cost = (call: () => Promise<unknown>) => costOf(under, call);
    /** A write: one round trip on a base this instance kept, two without the cache. */
    const write = warm ? ONE : TWO;
    /** A read on a cache miss, and again (a hit with the cache, another miss without). */
    const again = warm ? NONE : ONE;

    it("ContextService: each method's statements, round trips and transactions", async () => {
      const costs: Record<string, Cost> = {};
      costs["CreateContext"] = await cost(() => createContext(contexts(), "alice", "counted"));
      const { contextId } = await createContext(contexts(), "alice", "counted-2");
      costs["GetContext"] = await cost(() => contexts().getContext({ contextId }, alice));
      costs["GetContext again"] = await cost(() => contexts().getContext({ contextId }, alice));
      costs["UpdateContext"] = await cost(() =>
        contexts().updateContext({ context: { contextId, description: "x" }, updateMask: { paths: ["description"] } }, alice),
      );
      costs["TransitionContext"] = await cost(() => contexts().transitionContext({ contextId, target: { case: "status", value: ContextStatus.PAUSED } }, alice));
      costs["UpdateSharedState"] = await cost(() =>
        contexts().updateSharedState({ contextId, changes: [{ operation: StateOperation.SET, path: "plan.step", value: valueOut(1) }], requestId: "r-1" }, alice),
      );
      costs["GetSharedState"] = await cost(() => contexts().getSharedState({ contextId }, alice));
      costs["GetContext FULL"] = await cost(() => contexts().getContext({ contextId, view: ContextView.FULL }, alice));
      costs["ListContexts"] = await cost(() => contexts().listContexts({ pageSize: 10 }, alice));
      costs["GetContextStatistics"] = await cost(() => contexts().getContextStatistics({}, alice));
      costs["ListContextEvents"] = await cost(() => contexts().listContextEvents({ contextId, pageSize: 10 }, alice));
      costs["BatchCreateContexts"] = await cost(() =>
        contexts().batchCreateContexts({ requests: [{ context: { name: "b-1", type: ContextType.COLLABORATIVE } }, { context: { name: "b-2", type: ContextType.COLLABORATIVE } }] }, alice),
      );
      costs["DeleteContext"] = await cost(() => contexts().deleteContext({ contextId }, alice));
      console.log(`[round trips ${under.kind} ${warm ? "warm" : "no cache"}]`, JSON.stringify(costs));
      expect(costs).toEqual({
        CreateContext: ONE,
        GetContext: ONE,
        "GetContext again": again,
        UpdateContext: write,
        TransitionContext: write,
        UpdateSharedState: write,
        GetSharedState: ONE,
        "GetContext FULL": warm ? ONE : CHECKED,
        ListContexts: ONE,
        GetContextStatistics: ONE,
        ListContextEvents: CHECKED,
        BatchCreateContexts: { statements: 4, roundTrips: 1, transactions: 1 },
        DeleteContext: write,
      });
    });

    it("ParticipantService: each method's statements, round trips and transactions", async () => {
      const { contextId } = await createContext(contexts(), "alice", "members", { configuration: { maxParticipants: 10 } });
      const costs: Record<string, Cost> = {};
      let participantId = "";
      costs["AddParticipant"] = await cost(async () => {
        participantId = (await participants().addParticipant({ contextId, participant: { agentId: "bot-1" } }, alice)).participant!.participantId;
      });
      costs["GetParticipant"] = await cost(() => participants().getParticipant({ contextId, participantId }, alice));
      costs["GetParticipant again"] = await cost(() => participants().getParticipant({ contextId, participantId }, alice));
      costs["UpdateParticipant"] = await cost(() =>
        participants().updateParticipant({ participant: { contextId, participantId, displayName: "Bot" }, updateMask: { paths: ["display_name"] } }, alice),
      );
      costs["ListParticipants"] = await cost(() => participants().listParticipants({ contextId, pageSize: 10 }, alice));
      costs["Heartbeat"] = await cost(() => participants().heartbeat({ contextId, participantId }, as("bot-1")));
      costs["BatchAddParticipants"] = await cost(() =>
        participants().batchAddParticipants({ contextId, participants: [{ agentId: "bot-2" }, { agentId: "bot-3" }] }, alice),
      );
      costs["RemoveParticipant"] = await cost(() => participants().removeParticipant({ contextId, participantId }, alice));
      console.log(`[round trips ${under.kind} ${warm ? "warm" : "no cache"}]`, JSON.stringify(costs));
      expect(costs).toEqual({
        AddParticipant: write,
        GetParticipant: CHECKED,
        "GetParticipant again": warm ? NONE : CHECKED,
        UpdateParticipant: write,
        ListParticipants: CHECKED,
        Heartbeat: ONE,
        BatchAddParticipants: write,
        RemoveParticipant: write,
      });
    });
  };
}

describe("round trips per call", async () => {
  await describeOnApps("with the read cache (the default)", suite(true), { env: QUIET });
  await describeOnApps("without the read cache", suite(false), { env: { ...QUIET, CACHE_ENABLED: "false" } });
});
