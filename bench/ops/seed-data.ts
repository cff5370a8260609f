/**
 * Seeds, through the API, the data each scenario needs (see operations.ts's SeedKind): contexts
 * with members to read and update, contexts to delete, free member slots to fill, members to
 * remove. Batch calls (100 per call, the API's limit) a few at a time keep it to seconds.
 */
import { randomUUID } from "node:crypto";
import { ContextType } from "../../gen/mplp/context/v1/context_pb.js";
import { ContextService } from "../../gen/mplp/context/v1/context_service_pb.js";
import { ParticipantService } from "../../gen/mplp/context/v1/participant_service_pb.js";
import { ParticipantType } from "../../gen/mplp/context/v1/participant_pb.js";
import { createClient } from "../../src/transport/grpc-client.js";
import type { SeedKind } from "./operations.js";
import type { SeedItem } from "./unary-protocol.js";

/** The principal every benchmark call uses (x-principal-id): it owns every context. */
export const PRINCIPAL = "bench";
const BATCH = 100;
/** Batch calls in flight at once while seeding. */
const PARALLEL = 4;
/** The API's most members per context. */
const MAX_MEMBERS = 1000;
/**
 * Member writes (slots to fill, members to remove) per seeded context. Writes to one context go one
 * at a time on an instance (src/service/writes.ts), so a context takes one write per round trip:
 * with 1,000 per context the closed loop's 64 calls in flight queued on ~13 contexts, and the open
 * loop's 600 adds/s on 4, which measured that queue, not the call. With 50 per context the calls in
 * flight together fall on hundreds of contexts, one each (dealt round-robin, `interleaved`), as many
 * agents in many contexts would send them.
 */
const WRITES_PER_CONTEXT = 50;
const options = { metadata: { "x-principal-id": PRINCIPAL } };

/**
 * Items reordered so that consecutive ones belong to different contexts (the first of each
 * context, then the second of each, …): the closed loop's calls in flight and the open loop's
 * consecutive calls then write to different contexts, not one context's members in a row.
 */
function interleaved(items: readonly SeedItem[]): SeedItem[] {
  const byContext = new Map<string, SeedItem[]>();
  for (const item of items) {
    const list = byContext.get(item.contextId);
    if (list === undefined) byContext.set(item.contextId, [item]);
    else list.push(item);
  }
  const lists = [...byContext.values()];
  const out: SeedItem[] = [];
  for (let i = 0; out.length < items.length; i++) for (const list of lists) if (i < list.length) out.push(list[i]!);
  return out;
}

/** Runs `jobs` with at most `parallel` in flight. */
async function inParallel<T>(jobs: ReadonlyArray<() => Promise<T>>, parallel = PARALLEL): Promise<T[]> {
  const results: T[] = new Array<T>(jobs.length);
  let next = 0;
  const lane = async (): Promise<void> => {
    for (let i = next++; i < jobs.length; i = next++) results[i] = await jobs[i]!();
  };
  await Promise.all(Array.from({ length: parallel }, lane));
  return results;
}

export class Seeder {
  private readonly contexts;
  private readonly participants;
  private serial = 0;
  /** Names are unique per owner: several seeders in one run (and one process) must not repeat them. */
  private readonly nonce = randomUUID().slice(0, 8);

  constructor(address: string) {
    this.contexts = createClient(ContextService, address);
    this.participants = createClient(ParticipantService, address);
  }

  /** Creates `count` collaborative contexts with room for `maxParticipants`; returns their ids. */
  async createContexts(count: number, maxParticipants: number): Promise<string[]> {
    const jobs: Array<() => Promise<string[]>> = [];
    for (let first = 0; first < count; first += BATCH) {
      const size = Math.min(BATCH, count - first);
      jobs.push(async () => {
        const requests = Array.from({ length: size }, () => ({
          context: {
            name: `seed-${this.nonce}-${this.serial++}`,
            description: "seeded by the benchmark",
            type: ContextType.COLLABORATIVE,
            configuration: { maxParticipants },
          },
        }));
        const { contexts } = await this.contexts.batchCreateContexts({ requests }, options);
        return contexts.map((c) => c.contextId);
      });
    }
    return (await inParallel(jobs)).flat();
  }

  /** Adds `perContext` agent members to each context; returns (context, participant) pairs. */
  async addMembers(contextIds: readonly string[], perContext: number): Promise<SeedItem[]> {
    const jobs: Array<() => Promise<SeedItem[]>> = [];
    for (const contextId of contextIds) {
      for (let first = 0; first < perContext; first += BATCH) {
        const size = Math.min(BATCH, perContext - first);
        jobs.push(async () => {
          const participants = Array.from({ length: size }, (_, i) => ({
            agentId: `seed-agent-${first + i}`,
            participantType: ParticipantType.AGENT,
            displayName: `seeded agent ${first + i}`,
            roles: ["contributor"],
          }));
          const added = await this.participants.batchAddParticipants({ contextId, participants }, options);
          return added.participants.map((p) => ({ contextId, participantId: p.participantId }));
        });
      }
    }
    return (await inParallel(jobs)).flat();
  }

  /** Contexts stored in all: every context is the benchmark principal's, so its statistics count the table. */
  async storedContexts(): Promise<number> {
    const statistics = await this.contexts.getContextStatistics({}, options);
    return Number(statistics.totalContexts);
  }

  /**
   * Adds one member to each context, the agent `agentIdOf(i)` to the i-th, so each context's
   * participant is a principal of its own; returns (context, participant, agent). One call per
   * context, so more of them in flight than for the batches.
   */
  async addAgents(contextIds: readonly string[], agentIdOf: (i: number) => string): Promise<Array<{ contextId: string; participantId: string; agentId: string }>> {
    const jobs = contextIds.map((contextId, i) => async () => {
      const agentId = agentIdOf(i);
      const participants = [{ agentId, participantType: ParticipantType.AGENT, displayName: `active agent ${i}`, roles: ["contributor"] }];
      const added = await this.participants.batchAddParticipants({ contextId, participants }, options);
      return { contextId, participantId: added.participants[0]!.participantId, agentId };
    });
    return inParallel(jobs, 16);
  }

  /**
   * The items a scenario of this kind needs: `count` of them when each is used once, else the
   * shared `pool` (contexts with members, made once per run by the caller).
   */
  async itemsFor(kind: SeedKind, count: number, pool: { contexts: readonly SeedItem[]; members: readonly SeedItem[] }): Promise<{ items: SeedItem[]; consume: boolean }> {
    switch (kind) {
      case "none":
        return { items: [], consume: false };
      case "contexts":
        return { items: [...pool.contexts], consume: false };
      case "participants":
        return { items: interleaved(pool.members), consume: false };
      case "fresh-contexts":
        return { items: (await this.createContexts(count, 10)).map((contextId) => ({ contextId })), consume: true };
      case "slots": {
        // Each context takes WRITES_PER_CONTEXT members (and has room for MAX_MEMBERS): each id repeated
        // that often, dealt round-robin so that calls in flight together go to different contexts.
        const ids = await this.createContexts(Math.ceil(count / WRITES_PER_CONTEXT), MAX_MEMBERS);
        return { items: Array.from({ length: count }, (_, i) => ({ contextId: ids[i % ids.length]! })), consume: true };
      }
      case "fresh-participants": {
        const ids = await this.createContexts(Math.ceil(count / WRITES_PER_CONTEXT), MAX_MEMBERS);
        const members = await this.addMembers(ids, Math.min(WRITES_PER_CONTEXT, count));
        return { items: interleaved(members).slice(0, count), consume: true };
      }
    }
  }

  close(): void {
    this.contexts.close();
    this.participants.close();
  }
}
