/**
 * Two server processes on one Postgres database and one Redis: writers call the first, watchers
 * the second. Mid-run the doorbell's Redis connections are killed (CLIENT KILL: the writers'
 * publisher, their cache connection that carries the rings, and the watchers' subscriber), and later the watchers' process is killed (SIGKILL):
 * every watcher resumes on the survivor from its last revision + 1. Beside the WatchContext streams,
 * two Watch streams hold six watches each (two per context); after the Redis kill one watch of each
 * is cancelled and re-created from its last revision + 1, and after the server kill every watch is
 * re-created on new streams on the survivor. The watch validator over all streams and watches
 * shows zero revisions lost, zero repeated and none out of order. Postgres and Redis only (skipped with a
 * warning when either is down on a dev machine; failing under CI).
 */
import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Redis } from "ioredis";
import { ContextService } from "../../gen/mplp/context/v1/context_service_pb.js";
import { createClient } from "../../src/transport/grpc-client.js";
import { createTestPostgresDatabase, postgresAvailable, type EmptyTestDatabase } from "../support/databases.js";
import { assertWatchStreams, type RecordedStream } from "../support/watch-validator.js";
import { as, createContext, eventually, type ContextClient } from "./support/participants.js";
import { startServerProcess, type ServerProcess } from "./support/process.js";
import { adminRedis, clientList, killClientsNamed, deleteKeyPrefix, randomKeyPrefix, redisAvailable, TEST_REDIS_URL } from "./support/redis.js";
import { eventLog, watchAs, type WatchRecording } from "./support/watch.js";
import { watchStreamAs, type WatchStreamRecording } from "./support/watch-many.js";

const ready = (await postgresAvailable()) && (await redisAvailable());

describe.skipIf(!ready)("WatchContext and Watch across two server processes (Postgres + Redis)", () => {
  let database: EmptyTestDatabase;
  let redis: Redis;
  const processes: ServerProcess[] = [];
  const clients: Array<{ close(): void }> = [];
  const prefix = randomKeyPrefix();

  beforeAll(async () => {
    database = await createTestPostgresDatabase();
    redis = adminRedis();
    await redis.connect();
  });

  afterAll(async () => {
    for (const c of clients) c.close();
    await Promise.all(processes.map((p) => p.stop("SIGKILL")));
    redis?.disconnect();
    await database?.drop();
    await deleteKeyPrefix(prefix);
  });

  function clientOf(server: ServerProcess): ContextClient {
    const client = createClient(ContextService, server.address);
    clients.push(client);
    return client;
  }

  it("loses and repeats no revision through a Redis connection kill and a server kill", { timeout: 180_000 }, async () => {
    const env = {
      DATABASE_URL: database.url,
      DATABASE_POOL_MAX: "5",
      REDIS_URL: TEST_REDIS_URL,
      REDIS_KEY_PREFIX: prefix,
      // The database-heads check stays out of the way: every delivery here comes through Redis,
      // so the run shows the doorbell itself surviving the kill (lost rings are made good by the
      // next ring, which names a later revision). The check has its own unit tests.
      WATCH_RECONCILE_MS: "60000",
    };
    // One after the other: the first migrates the empty database.
    const writerServer = await startServerProcess(env);
    processes.push(writerServer);
    const watcherServer = await startServerProcess(env);
    processes.push(watcherServer);
    const writes = clientOf(writerServer);
    const watches = clientOf(watcherServer);
    const channel = `${prefix}doorbell`;
    const clientName = (server: ServerProcess, role: "pub" | "sub") => `${prefix}doorbell:${server.child.pid}:${role}`;
    await eventually("both instances subscribed to the doorbell", async () => {
      const [, n] = (await redis.call("PUBSUB", "NUMSUB", channel)) as [string, number];
      return Number(n) === 2 ? true : undefined;
    });

    const contexts = await Promise.all([0, 1, 2].map(async (i) => (await createContext(writes, "alice", `cluster ${i}`)).contextId));
    const heads = new Map(contexts.map((id) => [id, 1]));
    const watchers = contexts.flatMap((contextId, ci) =>
      [0, 1, 2, 3].map((k) => ({ contextId, stream: watchAs(watches, "alice", { contextId, startRevision: 1n }, `watcher ${ci}.${k} on B`) })),
    );
    await Promise.all(watchers.map((w) => w.stream.untilRevision(1)));
    // Two Watch streams on B, each with two watches of every context (ids 1–6).
    const muxes = [0, 1].map(() => watchStreamAs(watches, "alice"));
    const muxWatches = muxes.flatMap((mux, si) => contexts.flatMap((contextId, ci) => [1, 2].map((k) => ({ mux, si, contextId, id: BigInt(ci * 2 + k) }))));
    for (const w of muxWatches) w.mux.create({ watchId: w.id, contextId: w.contextId, startRevision: 1n });
    await Promise.all(muxWatches.map((w) => w.mux.untilRevision(w.id, 1)));

    // Writers on A, until told to stop.
    let writing = true;
    const writers = Array.from({ length: 4 }, async (_, wi) => {
      for (let n = 0; writing; n++) {
        const contextId = contexts[(wi + n) % contexts.length]!;
        const { context } = await writes.updateContext(
          { context: { contextId, description: `writer ${wi} write ${n}` }, updateMask: { paths: ["description"] } },
          as("alice"),
        );
        heads.set(contextId, Math.max(heads.get(contextId)!, Number(context!.revision)));
      }
    });
    const caughtUp = async (
      streams: ReadonlyArray<{ contextId: string; stream: WatchRecording }>,
      what: string,
      muxed: ReadonlyArray<{ contextId: string; mux: WatchStreamRecording; id: bigint }> = [],
    ): Promise<void> => {
      const targets = new Map(heads);
      await Promise.all([
        ...streams.map((w) => w.stream.untilRevision(targets.get(w.contextId)! + 5, 60_000)),
        ...muxed.map((w) => w.mux.untilRevision(w.id, targets.get(w.contextId)! + 5, 60_000)),
      ]).catch((error: unknown) => {
        throw new Error(`${what}: ${String(error)}`);
      });
    };
    await caughtUp(watchers, "before the Redis kill", muxWatches);

    // Kill the doorbell's connections: A's publisher and ring carrier, and B's subscriber.
    const killedSub = await killClientsNamed(redis, clientName(watcherServer, "sub"));
    const killedPub = await killClientsNamed(redis, clientName(writerServer, "pub"));
    // The writers' rings ride on their read cache's stamp script: its connection goes too.
    const killedCarrier = await killClientsNamed(redis, `${prefix}cache:${writerServer.child.pid}`);
    expect(killedSub).toHaveLength(1);
    expect(killedPub).toHaveLength(1);
    expect(killedCarrier).toHaveLength(1);
    // ioredis reconnects and re-subscribes by itself: a new connection of that name, subscribed.
    await eventually("B's doorbell subscriber to reconnect and re-subscribe", async () => {
      const sub = (await clientList(redis)).find((c) => c.name === clientName(watcherServer, "sub"));
      return sub !== undefined && sub.id !== killedSub[0] && sub.sub === 1 ? true : undefined;
    });
    await caughtUp(watchers, "after the Redis kill", muxWatches);
    // Watch 1 of each Watch stream is cancelled and re-created from its last revision + 1, mid-run.
    const recreatedFrom = new Map<number, number>();
    for (const [si, mux] of muxes.entries()) {
      mux.cancel(1n);
      await mux.untilCanceled(1n);
      const from = mux.of(1n).lastRevision() + 1;
      recreatedFrom.set(si, from);
      mux.create({ watchId: 1n, contextId: contexts[0]!, startRevision: BigInt(from) });
    }
    await caughtUp([], "after the re-creations", muxWatches);

    // Kill B outright; every watcher resumes on A right after the last revision it saw.
    await watcherServer.stop("SIGKILL");
    const ends = await Promise.all(watchers.map((w) => w.stream.ended));
    for (const end of ends) expect(end.kind === "failed" && end.error.code).toBe(status.UNAVAILABLE);
    for (const end of await Promise.all(muxes.map((m) => m.ended))) expect(end.kind === "failed" && end.error.code).toBe(status.UNAVAILABLE);
    const resumedMuxes = muxes.map(() => watchStreamAs(writes, "alice"));
    const resumedMux = muxWatches.map((w) => ({ ...w, mux: resumedMuxes[w.si]!, onB: w.mux, fromA: w.mux.of(w.id).lastRevision() + 1 }));
    for (const w of resumedMux) w.mux.create({ watchId: w.id, contextId: w.contextId, startRevision: BigInt(w.fromA) });
    const resumed = watchers.map((w, i) => ({
      contextId: w.contextId,
      first: w.stream,
      stream: watchAs(writes, "alice", { contextId: w.contextId, startRevision: BigInt(w.stream.lastRevision() + 1) }, `watcher ${i} resumed on A`),
    }));
    await caughtUp(resumed, "after resuming on the survivor", resumedMux);

    writing = false;
    await Promise.all(writers);
    const logs = new Map(await Promise.all(contexts.map(async (id) => [id, await eventLog(writes, id, "alice")] as const)));
    await Promise.all(resumed.map((w) => w.stream.untilRevision(logs.get(w.contextId)!.at(-1)!.revision)));
    await Promise.all(resumedMux.map((w) => w.mux.untilRevision(w.id, logs.get(w.contextId)!.at(-1)!.revision)));
    for (const w of resumed) await w.stream.cancel();
    for (const mux of resumedMuxes) await mux.cancelStream();

    for (const id of contexts) {
      const streams: RecordedStream[] = resumed
        .filter((w) => w.contextId === id)
        .flatMap((w) => {
          const first = w.first.recorded(1);
          return [first, w.stream.recorded(w.first.lastRevision() + 1, { resumes: first, through: logs.get(id)!.at(-1)!.revision })];
        });
      for (const w of resumedMux.filter((x) => x.contextId === id)) {
        const label = `Watch stream ${w.si} watch ${w.id}`;
        const from = w.id === 1n ? recreatedFrom.get(w.si)! : 1;
        const cancelled = w.id === 1n ? w.onB.past.find((p) => p.id === 1n)!.recorded(`${label} before its cancel`, 1) : undefined;
        const onB = w.onB.of(w.id).recorded(`${label} on B`, from, cancelled === undefined ? {} : { resumes: cancelled });
        streams.push(...(cancelled === undefined ? [] : [cancelled]), onB, w.mux.of(w.id).recorded(`${label} resumed on A`, w.fromA, { resumes: onB, through: logs.get(id)!.at(-1)!.revision }));
      }
      assertWatchStreams(logs.get(id)!, streams);
    }
    // No watch got a response before its created or after its canceled.
    for (const mux of [...muxes, ...resumedMuxes]) {
      for (const w of [...mux.past, ...mux.watches.values()]) expect(w.outOfOrder, `watch ${w.id}`).toEqual([]);
    }
  });
});
