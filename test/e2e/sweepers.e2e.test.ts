/**
 * Two server processes sweeping one Postgres database (Postgres only: PGlite is one process's
 * embedded database). Participants that never heartbeat are expired by whichever instance gets
 * there first: each exactly once — one ACTIVE → INACTIVE event and one PARTICIPANT_LEFT — and
 * none missed when an instance dies mid-way. The two share Redis as well, as several instances
 * must: without it each one's read cache would hear only its own writes.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ContextService } from "../../gen/mplp/context/v1/context_service_pb.js";
import { ContextEventType } from "../../gen/mplp/context/v1/event_pb.js";
import { ParticipantStatus } from "../../gen/mplp/context/v1/participant_pb.js";
import { ParticipantService } from "../../gen/mplp/context/v1/participant_service_pb.js";
import { createClient } from "../../src/transport/grpc-client.js";
import { createTestPostgresDatabase, postgresAvailable, type EmptyTestDatabase } from "../support/databases.js";
import { startServerProcess, type ServerProcess } from "./support/process.js";
import { allEvents, as, createContext, eventually, participantOf, type ContextClient, type ParticipantClient } from "./support/participants.js";
import { deleteKeyPrefix, randomKeyPrefix, redisAvailable, TEST_REDIS_URL } from "./support/redis.js";

const alice = as("alice");
const ENV = {
  PRESENCE_TTL_MS: "300",
  PARTICIPANT_ACTIVITY_TIMEOUT_MS: "300",
  SWEEP_INTERVAL_MS: "50",
  // Few contexts per pass, so both instances keep finding work at the same time.
  SWEEP_BATCH_SIZE: "2",
  DATABASE_POOL_MAX: "4",
};

const postgresUp = (await postgresAvailable()) && (await redisAvailable());
const KEY_PREFIX = randomKeyPrefix();

interface Instance {
  readonly process: ServerProcess;
  readonly contexts: ContextClient;
  readonly participants: ParticipantClient;
}

describe.skipIf(!postgresUp)("sweepers in two processes on one Postgres (and one Redis)", () => {
  let database: EmptyTestDatabase | undefined;
  const instances: Instance[] = [];

  beforeAll(async () => {
    database = await createTestPostgresDatabase();
    // One after the other: the first migrates the empty database.
    for (let i = 0; i < 2; i++) {
      const process = await startServerProcess({ ...ENV, DATABASE_URL: database.url, REDIS_URL: TEST_REDIS_URL, REDIS_KEY_PREFIX: KEY_PREFIX });
      instances.push({ process, contexts: createClient(ContextService, process.address), participants: createClient(ParticipantService, process.address) });
    }
  });

  afterAll(async () => {
    for (const instance of instances) {
      instance.contexts.close();
      instance.participants.close();
      await instance.process.stop();
    }
    await database?.drop();
    await deleteKeyPrefix(KEY_PREFIX);
  });

  const instance = (i: number): Instance => {
    const found = instances[i];
    if (!found) throw new Error(`instance ${i} did not start (did beforeAll fail?)`);
    return found;
  };

  /** Creates `contexts` contexts of `perContext` silent participants, alternating instances; returns the context ids. */
  async function silentCrowd(prefix: string, contexts: number, perContext: number, via: readonly number[]): Promise<string[]> {
    const ids: string[] = [];
    for (let k = 0; k < contexts; k++) {
      const through = instance(via[k % via.length]!);
      const c = await createContext(through.contexts, "alice", `${prefix}-${k}`, { configuration: { maxParticipants: perContext } });
      await Promise.all(
        Array.from({ length: perContext }, (_, j) =>
          through.participants.addParticipant({ contextId: c.contextId, participant: { agentId: `${prefix}-${k}-agent-${j}` } }, alice),
        ),
      );
      ids.push(c.contextId);
    }
    return ids;
  }

  /** Waits until every context has no participants left, asking `via`. */
  async function untilEmpty(contextIds: readonly string[], via: Instance): Promise<void> {
    await eventually(
      `all participants of ${contextIds.length} contexts are removed`,
      async () => {
        for (const contextId of contextIds) {
          const page = await via.participants.listParticipants({ contextId }, alice);
          if (page.totalSize !== 0) return undefined;
        }
        return true;
      },
      { timeoutMs: 60_000, intervalMs: 100 },
    );
  }

  /** Checks each participant of each context was expired exactly once, and the context agrees. */
  async function expectEachExpiredOnce(contextIds: readonly string[], perContext: number, via: Instance): Promise<void> {
    for (const contextId of contextIds) {
      const events = await allEvents(via.contexts, contextId, "alice");
      const revisions = events.map((e) => e.revision);
      // Revisions never go back, and every revision from 1 to the last has its events: no gap.
      // (One sweep may expire several members of a context in one revision, as a batch adds them.)
      expect(revisions, `revisions of ${contextId}`).toEqual([...revisions].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
      const distinct = [...new Set(revisions)];
      expect(distinct, `distinct revisions of ${contextId}`).toEqual(distinct.map((_, i) => BigInt(i + 1)));

      const byParticipant = new Map<string, string[]>();
      for (const e of events) {
        const id = participantOf(e);
        if (id === undefined) continue;
        const status = e.payload.case === "participant" ? ParticipantStatus[e.payload.value.status] : "?";
        const step = `${ContextEventType[e.type]}:${e.type === ContextEventType.PARTICIPANT_UPDATED ? status : ""}:${e.reason}`;
        byParticipant.set(id, [...(byParticipant.get(id) ?? []), step]);
      }
      expect(byParticipant.size, `participants seen in the events of ${contextId}`).toBe(perContext);
      for (const [id, steps] of byParticipant) {
        expect(steps, `events of participant ${id} in ${contextId}`).toEqual([
          "PARTICIPANT_JOINED::",
          "PARTICIPANT_UPDATED:INACTIVE:lease expired",
          "PARTICIPANT_LEFT::expired",
        ]);
      }
      const { context } = await via.contexts.getContext({ contextId }, alice);
      expect(context, `context ${contextId}`).toMatchObject({ participantCount: 0, revision: revisions.at(-1) });
    }
  }

  /** What the instances' "sweep" log lines (after line `from[i]`) add up to. */
  function sweptSince(from: readonly number[]): { lapsed: number; removed: number; split: string } {
    let lapsed = 0;
    let removed = 0;
    const split: string[] = [];
    instances.forEach((inst, i) => {
      let l = 0;
      let r = 0;
      for (const line of inst.process.lines.slice(from[i] ?? 0)) {
        const entry = JSON.parse(line) as { msg?: string; lapsed?: number; removed?: number };
        if (entry.msg !== "sweep") continue;
        l += entry.lapsed ?? 0;
        r += entry.removed ?? 0;
      }
      lapsed += l;
      removed += r;
      split.push(`instance ${i}: ${l} lapsed, ${r} removed`);
    });
    return { lapsed, removed, split: split.join("; ") };
  }

  // Generous bounds (not expectations): on a loaded 2-core machine two server processes and Postgres share it.
  it("expires each of 40 silent participants exactly once: one ACTIVE → INACTIVE event, one PARTICIPANT_LEFT, count 0", { timeout: 90_000 }, async () => {
    const from = instances.map((i) => i.process.lines.length);
    const contextIds = await silentCrowd("both", 8, 5, [0, 1]);
    await untilEmpty(contextIds, instance(0));
    await expectEachExpiredOnce(contextIds, 5, instance(1));
    // The instances' own accounting agrees: 40 lapsed and 40 removed between them, none twice.
    const swept = await eventually("both instances have logged their sweeps", async () => {
      const s = sweptSince(from);
      return s.removed >= 40 ? s : undefined;
    });
    expect([swept.lapsed, swept.removed], swept.split).toEqual([40, 40]);
  });

  it("misses nobody when one instance is killed while they lapse: the other finishes, still exactly once", { timeout: 90_000 }, async () => {
    const contextIds = await silentCrowd("kill", 8, 5, [1]);
    const code = await instance(1).process.stop("SIGKILL");
    expect(code).toBeNull();
    await untilEmpty(contextIds, instance(0));
    await expectEachExpiredOnce(contextIds, 5, instance(0));
  });
});
