/**
 * Read replicas on a real streaming replica: a throwaway primary and a hot standby built from the
 * machine's Postgres binaries (initdb, pg_basebackup -R) in a temp folder, on loopback ports, and
 * the whole app on top (DATABASE_URL + DATABASE_READ_URL) with real gRPC clients.
 *
 * Shows: lists, later participant pages, statistics and the event trail are served by the replica
 * (its own pg_stat_user_tables counts the scans, and the selector counts the reads), writes and
 * first participant pages go to the primary, a deadline is enforced on the replica as on the
 * primary, a lagging replica is skipped, and stopping the replica mid-traffic fails no call.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { chown, mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { ContextService } from "../../gen/mplp/context/v1/context_service_pb.js";
import { ContextType } from "../../gen/mplp/context/v1/context_pb.js";
import { ParticipantService } from "../../gen/mplp/context/v1/participant_service_pb.js";
import type { App } from "../../src/app.js";
import { AppError } from "../../src/domain/app-error.js";
import { PgContextStore } from "../../src/store/context-store.js";
import { openDatabase } from "../../src/store/database.js";
import type { ReadReplicaCounters } from "../../src/store/read-replicas.js";
import { createClient } from "../../src/transport/grpc-client.js";
import { sqlStateOf } from "../support/app-error-assertions.js";
import { startTestApp } from "../e2e/support/app.js";
import { getHttp, sample } from "../e2e/support/metrics.js";
import { captureLog } from "../e2e/support/log-capture.js";

const run = promisify(execFile);
const BIN = process.env["PG_BIN_DIR"] ?? "/usr/lib/postgresql/15/bin";
const binariesPresent = ["initdb", "pg_ctl", "pg_basebackup"].every((name) => existsSync(join(BIN, name)));
/** Root may not run Postgres: the binaries then run as the postgres OS user. */
const asRoot = process.getuid?.() === 0;

/** Runs a Postgres binary (as the postgres user when we are root). */
async function pg(binary: string, args: string[]): Promise<void> {
  const [command, argv] = asRoot ? ["runuser", ["-u", "postgres", "--", join(BIN, binary), ...args]] : [join(BIN, binary), args];
  await run(command, argv, { timeout: 30_000 });
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

/** One Postgres server of the throwaway cluster. */
class Server {
  constructor(
    readonly dir: string,
    readonly port: number,
    private readonly socketDir: string,
  ) {}

  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  start(): Promise<void> {
    // -l: the server's output goes to a file, so pg_ctl does not hold our pipes open.
    return pg("pg_ctl", ["-D", this.dir, "-l", `${this.dir}.log`, "-o", `-p ${this.port} -c listen_addresses=127.0.0.1 -k ${this.socketDir}`, "-w", "start"]);
  }

  stop(): Promise<void> {
    return pg("pg_ctl", ["-D", this.dir, "-m", "immediate", "-w", "stop"]);
  }

  /** Runs one query on a connection of its own (the server may have been restarted in between). */
  async query<T extends postgres.Row>(text: string): Promise<T[]> {
    const sql = postgres(this.url, { max: 1, onnotice: () => {}, connect_timeout: 5 });
    try {
      return [...(await sql.unsafe<T[]>(text))];
    } finally {
      await sql.end({ timeout: 1 });
    }
  }
}

const as = (principal: string) => ({ metadata: { "x-principal-id": principal } });
const alice = as("alice");
const MAX_LAG_MS = 300;

describe.skipIf(!binariesPresent)("read replicas (a real primary and streaming replica)", () => {
  let temp: string | undefined;
  let primary: Server;
  let replica: Server;
  let app: App | undefined;
  const log = captureLog("info");
  const clients: Array<{ close(): void }> = [];

  beforeAll(async () => {
    temp = await mkdtemp(join(tmpdir(), "mplp-replica-"));
    if (asRoot) {
      const { stdout } = await run("id", ["-u", "postgres"]);
      await chown(temp, Number(stdout.trim()), Number(stdout.trim()));
    }
    primary = new Server(join(temp, "primary"), await freePort(), temp);
    replica = new Server(join(temp, "replica"), await freePort(), temp);
    await pg("initdb", ["-D", primary.dir, "-U", "postgres", "--auth=trust", "--no-sync"]);
    await pg("pg_ctl", ["-D", primary.dir, "-l", `${primary.dir}.log`, "-o", `-p ${primary.port} -c listen_addresses=127.0.0.1 -k ${temp} -c wal_level=replica`, "-w", "start"]);
    // -R writes standby.signal and primary_conninfo: the copy starts as a streaming hot standby.
    await pg("pg_basebackup", ["-R", "-D", replica.dir, "-h", "127.0.0.1", "-p", String(primary.port), "-U", "postgres", "--checkpoint=fast"]);
    await replica.start();
    app = await startTestApp(
      {
        DATABASE_URL: primary.url,
        DATABASE_READ_URL: replica.url,
        READ_REPLICA_MAX_LAG_MS: String(MAX_LAG_MS),
        DATABASE_POOL_MAX: "4",
        // Every read reaches the database, so the replica's statistics see it.
        CACHE_ENABLED: "false",
      },
      log.logger,
    );
    // The migrations ran on the primary just now: wait for the replica to have replayed them.
    await waitForState("healthy");
  });

  afterAll(async () => {
    for (const c of clients) c.close();
    await app?.stop().catch(() => {});
    for (const server of [replica, primary]) await server?.stop().catch(() => {});
    if (temp !== undefined) await rm(temp, { recursive: true, force: true });
  });

  const running = (): App => {
    if (app === undefined) throw new Error("the app did not start (did beforeAll fail?)");
    return app;
  };
  const replicas = () => {
    const set = running().database.replicas;
    if (set === undefined) throw new Error("the app opened no read replicas");
    return set;
  };
  const counters = (): ReadReplicaCounters => replicas().counters();
  /** Counters since `before`. */
  const since = (before: ReadReplicaCounters): ReadReplicaCounters => {
    const now = counters();
    return { replica: now.replica - before.replica, primaryFallback: now.primaryFallback - before.primaryFallback, retriedOnPrimary: now.retriedOnPrimary - before.retriedOnPrimary };
  };
  async function waitForState(state: "healthy" | "lagging" | "down"): Promise<void> {
    await vi.waitFor(() => expect(replicas().status()[0]?.state).toBe(state), { timeout: 15_000, interval: 50 });
  }
  const contextsClient = () => {
    const c = createClient(ContextService, `127.0.0.1:${running().port}`);
    clients.push(c);
    return c;
  };
  const participantsClient = () => {
    const c = createClient(ParticipantService, `127.0.0.1:${running().port}`);
    clients.push(c);
    return c;
  };

  /** Scans of the contexts table the replica itself has counted (its statistics, not ours). */
  const replicaScansOfContexts = async (): Promise<number> => {
    const [row] = await replica.query<{ scans: string }>(
      "select coalesce(sum(seq_scan + coalesce(idx_scan, 0)), 0) as scans from pg_stat_user_tables where relname = 'contexts'",
    );
    return Number(row?.scans ?? 0);
  };

  it("serves ListContexts from the replica, as its own statistics show, and writes on the primary", async () => {
    const contexts = contextsClient();
    // Writes: a replica would refuse them (read-only transaction), so these succeeding means the primary.
    for (const name of ["one", "two", "three"]) await contexts.createContext({ context: { name, type: ContextType.COLLABORATIVE } }, alice);
    const [written] = await primary.query<{ n: string }>("select count(*) as n from contexts");
    expect(Number(written?.n)).toBe(3);
    // The replica serves what it has replayed: wait for the writes to arrive (lag 0 means all replayed).
    await vi.waitFor(async () => expect(Number((await replica.query<{ n: string }>("select count(*) as n from contexts"))[0]?.n)).toBe(3));

    const scansBefore = await replicaScansOfContexts();
    const before = counters();
    const calls = 10;
    for (let i = 0; i < calls; i++) {
      const page = await contexts.listContexts({}, alice);
      expect(page.contexts.map((c) => c.name)).toEqual(["three", "two", "one"]);
      expect(page.totalSize).toBe(3);
    }
    expect(since(before)).toEqual({ replica: calls, primaryFallback: 0, retriedOnPrimary: 0 });
    // The operator sees the same on /metrics.
    const metrics = (await getHttp(running().metricsPort, "/metrics")).body;
    expect(sample(metrics, "mplp_context_replica_reads_total", { served_by: "replica" })).toBeGreaterThanOrEqual(calls);
    expect(sample(metrics, "mplp_context_read_replica_in_rotation", { state: "healthy" })).toBe(1);
    // Each first page scans contexts twice (the page and its count). A backend publishes its
    // statistics at the end of a transaction at least a second after its last flush (or when idle
    // for 10 s): keep listing now and then until the replica shows them.
    await vi.waitFor(
      async () => {
        await contexts.listContexts({}, alice);
        expect(await replicaScansOfContexts()).toBeGreaterThanOrEqual(scansBefore + calls);
      },
      { timeout: 20_000, interval: 400 },
    );
  });

  it("serves later ListParticipants pages, statistics and the event trail from the replica; first participant pages from the primary", async () => {
    const contexts = contextsClient();
    const participants = participantsClient();
    const context = (await contexts.createContext({ context: { name: "team", type: ContextType.COLLABORATIVE } }, alice)).context!;
    for (const agentId of ["a", "b", "c"]) await participants.addParticipant({ contextId: context.contextId, participant: { agentId } }, alice);
    await waitForState("healthy");
    await vi.waitFor(async () => expect((await replica.query("select 1 from participants where agent_id = 'c'")).length).toBe(1));

    let before = counters();
    const first = await participants.listParticipants({ contextId: context.contextId, pageSize: 2 }, alice);
    expect(first.participants.map((p) => p.agentId)).toEqual(["a", "b"]);
    expect(since(before)).toEqual({ replica: 0, primaryFallback: 0, retriedOnPrimary: 0 });

    before = counters();
    const second = await participants.listParticipants({ contextId: context.contextId, pageSize: 2, pageToken: first.nextPageToken }, alice);
    expect(second.participants.map((p) => p.agentId)).toEqual(["c"]);
    expect(since(before).replica).toBe(1);

    before = counters();
    const statistics = await contexts.getContextStatistics({}, alice);
    expect(statistics).toBeDefined();
    expect(since(before).replica).toBe(1);

    before = counters();
    const events = await contexts.listContextEvents({ contextId: context.contextId }, alice);
    expect(events.events.map((e) => Number(e.revision))).toEqual([1, 2, 3, 4]);
    expect(since(before)).toEqual({ replica: 1, primaryFallback: 0, retriedOnPrimary: 0 });
  });

  it("enforces a call's deadline on the replica: the replica cancels the work (TIMEOUT), with no retry on the primary", async () => {
    const store = new PgContextStore(running().database);
    // An ACCESS EXCLUSIVE lock taken on the primary is replayed on the standby, where it blocks reads of the table.
    const locker = postgres(primary.url, { max: 1, onnotice: () => {} });
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let locked!: () => void;
    const taken = new Promise<void>((resolve) => (locked = resolve));
    const transaction = locker.begin(async (sql) => {
      await sql`lock table contexts in access exclusive mode`;
      locked();
      await held;
    });
    try {
      await taken;
      // The lock's WAL record sits unflushed while its transaction is open: another session's
      // commit flushes it, and only flushed WAL is streamed.
      await primary.query("select pg_current_xact_id()");
      await vi.waitFor(
        async () => {
          const locks = await replica.query("select 1 from pg_locks where locktype = 'relation' and mode = 'AccessExclusiveLock' and relation = 'contexts'::regclass");
          expect(locks.length).toBeGreaterThan(0);
        },
        { timeout: 10_000, interval: 100 },
      );
      await waitForState("healthy");
      const before = counters();
      const error = await store.listContexts({ deadline: Date.now() + 700, replicaOk: true }, { principal: "alice", filter: {}, limit: 10 }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(AppError);
      expect((error as AppError).reason).toBe("TIMEOUT");
      // 57014: the replica's own statement_timeout (set from the deadline) cancelled the query.
      expect(sqlStateOf(error)).toBe("57014");
      expect(since(before)).toEqual({ replica: 0, primaryFallback: 0, retriedOnPrimary: 0 });
      expect(replicas().status()[0]?.state).toBe("healthy");
    } finally {
      release();
      await transaction.catch(() => {});
      await locker.end({ timeout: 1 });
    }
  });

  it("skips a replica lagging past READ_REPLICA_MAX_LAG_MS, and takes it back once it catches up", async () => {
    const contexts = contextsClient();
    await replica.query("select pg_wal_replay_pause()");
    try {
      await contexts.createContext({ context: { name: "while-paused", type: ContextType.COLLABORATIVE } }, alice);
      await waitForState("lagging");
      expect(replicas().status()[0]?.lagMs).toBeGreaterThan(MAX_LAG_MS);
      const before = counters();
      const page = await contexts.listContexts({}, alice);
      // The primary answered: the replica has not replayed this context.
      expect(page.contexts.map((c) => c.name)).toContain("while-paused");
      expect(since(before)).toEqual({ replica: 0, primaryFallback: 1, retriedOnPrimary: 0 });
    } finally {
      await replica.query("select pg_wal_replay_resume()");
    }
    await waitForState("healthy");
    const before = counters();
    expect((await contexts.listContexts({}, alice)).contexts.map((c) => c.name)).toContain("while-paused");
    expect(since(before).replica).toBe(1);
    expect(log.entries().some((e) => e["level"] === 40 && String(e["msg"]).includes("lags behind the primary"))).toBe(true);
  });

  it("loses no call when the replica stops mid-traffic: its reads fall back to the primary, and it rejoins when it is back", async () => {
    const contexts = contextsClient();
    for (const name of ["steady-1", "steady-2"]) await contexts.createContext({ context: { name, type: ContextType.COLLABORATIVE } }, alice);
    await vi.waitFor(async () => expect((await replica.query("select 1 from contexts where name = 'steady-2'")).length).toBe(1));
    await waitForState("healthy");
    const warningsBefore = log.entries().filter((e) => e["level"] === 40).length;
    const before = counters();
    const total = 150;
    let started = 0;
    let stopping: Promise<void> | undefined;
    const failures: unknown[] = [];
    const worker = async () => {
      while (started < total) {
        started++;
        // A third of the way in, the replica goes down hard, calls in flight and all.
        if (started === 50) stopping = replica.stop();
        // Keep calling until the stop has finished, so calls certainly meet a dead replica.
        if (started === total && stopping !== undefined) await stopping;
        try {
          const page = await contexts.listContexts({ pageSize: 2 }, alice);
          expect(page.contexts).toHaveLength(2);
        } catch (error) {
          failures.push(error);
        }
      }
    };
    await Promise.all([worker(), worker(), worker(), worker()]);
    await stopping;
    for (let i = 0; i < 5; i++) await contexts.listContexts({ pageSize: 2 }, alice).catch((error: unknown) => failures.push(error));
    expect(failures).toEqual([]);
    const served = since(before);
    expect(served.replica).toBeGreaterThan(0);
    expect(served.primaryFallback).toBeGreaterThan(0);
    expect(served.replica + served.primaryFallback).toBe(total + 5);
    await waitForState("down");
    const warnings = log.entries().filter((e) => e["level"] === 40).slice(warningsBefore);
    expect(warnings.map((e) => e["msg"])).toEqual([expect.stringContaining("does not answer")]);

    await replica.start();
    await waitForState("healthy");
    const back = counters();
    await contexts.listContexts({}, alice);
    expect(since(back).replica).toBe(1);
    expect(log.entries().some((e) => e["level"] === 30 && String(e["msg"]).includes("back in rotation"))).toBe(true);
  });
});

describe("read replicas on embedded PGlite", () => {
  it("are ignored with one warning: an in-process database has none", async () => {
    const log = captureLog("info");
    const database = await openDatabase({
      pgliteDataDir: "memory://",
      poolMax: 1,
      statementTimeoutMs: 30_000,
      readUrls: ["postgres://postgres@127.0.0.1:1/postgres"],
      logger: log.logger,
    });
    try {
      expect(database.replicas).toBeUndefined();
      const warnings = log.entries().filter((e) => e["level"] === 40);
      expect(warnings.map((e) => e["msg"])).toEqual([expect.stringContaining("DATABASE_READ_URL is ignored")]);
      // Reads a replica may serve still work, on the one database there is.
      const page = await new PgContextStore(database).listContexts({ replicaOk: true }, { principal: "alice", filter: {}, limit: 1 });
      expect(page.contexts).toEqual([]);
    } finally {
      await database.close();
    }
  });
});
