/**
 * The scenarios of issue 4's benchmark, each setting up its own servers and data and tearing them
 * down again:
 * - (a) many watchers over many contexts, on one server instance and on two (processes sharing one
 *   throwaway Postgres database and Redis; commits go to the first, watchers are split over both);
 * - (b) many watchers on one context, on our server and on the bare grpc-js baseline.
 * Our servers always run on Postgres + Redis (the production shape), with a random Redis prefix so
 * nothing else on the Redis can ring their doorbell.
 */
import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { ContextType } from "../../gen/mplp/context/v1/context_pb.js";
import { ContextService } from "../../gen/mplp/context/v1/context_service_pb.js";
import { createClient } from "../../src/transport/grpc-client.js";
import { BARE_READY_MESSAGE, builtServerEntry, SERVER_READY_MESSAGE, startProcess, type ServerProcess } from "./processes.js";
import { createThrowawayDatabase, type Cleanup } from "./resources.js";
import { runFanout, type FanoutResult } from "./run-fanout.js";
import type { FanoutSettings } from "./settings.js";

/** Owner of every benchmark context, so it may write and watch them all. */
export const PRINCIPAL = "bench";
/** BatchCreateContexts takes at most this many. */
const CREATE_BATCH = 100;

/** Starts `count` instances of our server on a fresh database and Redis prefix (torn down by the returned stop). */
export async function startCluster(count: number, settings: FanoutSettings, cleanup: Cleanup): Promise<{ servers: ServerProcess[]; stop: () => Promise<void> }> {
  const database = await createThrowawayDatabase(settings.databaseUrl);
  const dropDatabase = cleanup.add(`drop the throwaway database ${new URL(database.url).pathname}`, () => database.drop());
  const prefix = `mplp:bench:${randomUUID()}:`;
  const env = {
    DATABASE_URL: database.url,
    REDIS_URL: settings.redisUrl,
    REDIS_KEY_PREFIX: prefix,
    LOG_LEVEL: "info",
    // Every watcher here is the one benchmark principal; the per-principal quotas exist to stop
    // one agent hogging an instance, which is what this load does on purpose.
    WATCH_MAX_PER_PRINCIPAL: String(Math.max(settings.spread.watchers, settings.hot.watchers)),
    WATCH_MAX_PER_STREAM: String(Math.max(settings.spread.watchers, settings.hot.watchers)),
    RATE_LIMIT_RPS: "0",
  };
  const servers: ServerProcess[] = [];
  const stops: Array<() => Promise<void>> = [];
  // One after the other: the first migrates the empty database.
  for (let i = 0; i < count; i++) {
    const server = await startProcess(String.fromCharCode(65 + i), [builtServerEntry()], env, SERVER_READY_MESSAGE);
    servers.push(server);
    stops.push(cleanup.add(`stop server ${server.label} (pid ${server.pid})`, () => server.stop()));
  }
  await untilSubscribed(settings.redisUrl, `${prefix}doorbell`, count);
  return {
    servers,
    stop: async () => {
      await Promise.all(stops.map((stop) => stop()));
      await dropDatabase();
    },
  };
}

/** Waits until `count` subscribers listen on the doorbell channel, so no instance misses the first rings. */
async function untilSubscribed(redisUrl: string, channel: string, count: number): Promise<void> {
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1, lazyConnect: true });
  try {
    await redis.connect();
    const deadline = Date.now() + 30_000;
    for (;;) {
      const [, subscribers] = (await redis.call("PUBSUB", "NUMSUB", channel)) as [string, number];
      if (Number(subscribers) >= count) return;
      if (Date.now() > deadline) throw new Error(`only ${subscribers} of ${count} servers subscribed to ${channel} after 30 s`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  } finally {
    redis.disconnect();
  }
}

/** Creates `count` contexts owned by the benchmark principal; returns their ids. */
export async function createContexts(server: ServerProcess, count: number): Promise<string[]> {
  const client = createClient(ContextService, server.address);
  try {
    const ids: string[] = [];
    for (let first = 0; first < count; first += CREATE_BATCH) {
      const requests = Array.from({ length: Math.min(CREATE_BATCH, count - first) }, (_, i) => ({
        context: { name: `fan-out ${first + i}`, type: ContextType.COLLABORATIVE },
      }));
      const { contexts } = await client.batchCreateContexts({ requests }, { metadata: { "x-principal-id": PRINCIPAL } });
      ids.push(...contexts.map((c) => c.contextId));
    }
    return ids;
  } finally {
    client.close();
  }
}

/** (a) on `instances` server processes: watchers dealt over all of them, commits to the first. */
export async function spreadScenario(instances: 1 | 2, settings: FanoutSettings, cleanup: Cleanup): Promise<FanoutResult> {
  const cluster = await startCluster(instances, settings, cleanup);
  try {
    const [writeServer] = cluster.servers;
    const contextIds = await createContexts(writeServer!, settings.spread.contexts);
    return await runFanout(
      {
        name: instances === 1 ? "a-one-instance" : "a-two-instances",
        title: instances === 1 ? "(a) one instance" : "(a) two instances",
        watchServers: cluster.servers,
        writeServer: writeServer!,
        contextIds,
        watchers: settings.spread.watchers,
        commitsPerSecond: settings.spread.commitsPerSecond,
        principal: PRINCIPAL,
        rpc: settings.rpc,
      },
      settings,
      cleanup,
    );
  } finally {
    await cluster.stop();
  }
}

/** (b) ours: every watcher on one context of one instance. */
export async function hotScenarioOurs(settings: FanoutSettings, cleanup: Cleanup): Promise<FanoutResult> {
  const cluster = await startCluster(1, settings, cleanup);
  try {
    const [server] = cluster.servers;
    const contextIds = await createContexts(server!, 1);
    return await runFanout(
      {
        name: "b-ours",
        title: "(b) ours, one context",
        watchServers: [server!],
        writeServer: server!,
        contextIds,
        watchers: settings.hot.watchers,
        commitsPerSecond: settings.hot.commitsPerSecond,
        principal: PRINCIPAL,
        rpc: settings.rpc,
      },
      settings,
      cleanup,
    );
  } finally {
    await cluster.stop();
  }
}

/** (b) the baseline: the same load on the bare grpc-js server. */
export async function hotScenarioBare(settings: FanoutSettings, cleanup: Cleanup): Promise<FanoutResult> {
  const bare = await startProcess("bare", ["bench/fanout/bare-server.ts"], {}, BARE_READY_MESSAGE);
  const stop = cleanup.add(`stop the bare grpc-js server (pid ${bare.pid})`, () => bare.stop());
  try {
    return await runFanout(
      {
        name: "b-bare",
        title: "(b) bare grpc-js, one context",
        watchServers: [bare],
        writeServer: bare,
        contextIds: [randomUUID()],
        watchers: settings.hot.watchers,
        commitsPerSecond: settings.hot.commitsPerSecond,
        principal: PRINCIPAL,
        // The bare server serves WatchContext only: its figure is the floor of a stream per watcher.
        rpc: "watch-context",
      },
      settings,
      cleanup,
    );
  } finally {
    await stop();
  }
}
