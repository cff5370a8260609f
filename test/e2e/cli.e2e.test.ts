/**
 * The `mplp-context` CLI end to end: every command against a live server process, the identity
 * kept from MPLP_PRINCIPAL, `contexts get --full`, errors as one line with code and reason,
 * `participants heartbeat|keepalive` keeping a lease, and `watch` printing a scripted session and
 * resuming across a server restart (same PGlite data dir, same port) with no gap and no repeat.
 */
import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, ContextType, ParticipantStatus, setVar, type MplpClient } from "../../src/sdk/index.js";
import { eventually } from "./support/participants.js";
import { startServerProcess, type ServerProcess } from "./support/process.js";
import { cli, revisionsOf, RunningCli } from "./cli-support.js";

const MISSING = "00000000-0000-4000-8000-000000000000";

describe("mplp-context CLI", () => {
  let server: ServerProcess;
  let as: (principal: string, ...args: string[]) => string[];

  beforeAll(async () => {
    server = await startServerProcess({ PGLITE_DATA_DIR: "memory://" });
    as = (principal, ...args) => [...args, "--addr", server.address, "--principal", principal];
  });

  afterAll(async () => {
    await server?.stop();
  });

  it("runs every command: contexts, participants, state, events", async () => {
    const created = await cli(as("alice", "contexts", "create", "cli-plan", "--type", "pipeline", "--json"));
    expect(created.code, created.stderr).toBe(0);
    const context = JSON.parse(created.stdout) as { contextId: string; name: string; type: string; revision: string };
    expect(context).toMatchObject({ name: "cli-plan", type: "CONTEXT_TYPE_PIPELINE", revision: "1" });
    const id = context.contextId;

    const listed = await cli(as("alice", "contexts", "list"));
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(new RegExp(`${id}\\s+cli-plan\\s+PIPELINE\\s+ACTIVE`));

    const got = await cli(as("alice", "contexts", "get", id));
    expect(got.stdout).toMatch(/owner:\s+alice/);

    const added = await cli(as("alice", "participants", "add", id, "bob", "--role", "contributor", "--json"));
    expect(added.code, added.stderr).toBe(0);
    const bob = JSON.parse(added.stdout) as { participantId: string; agentId: string };
    expect(bob.agentId).toBe("bob");
    const members = await cli(as("alice", "participants", "list", id));
    expect(members.stdout).toMatch(new RegExp(`${bob.participantId}\\s+bob\\s+AGENT\\s+ACTIVE\\s+contributor`));

    // bob writes as himself; the value is JSON when it parses, text otherwise.
    const set = await cli(as("bob", "state", "set", id, "plan.step=2", "owner=bob"));
    expect(set.stdout).toContain("revision 3");
    const state = await cli(as("alice", "state", "get", id, "--json"));
    expect(JSON.parse(state.stdout)).toMatchObject({ revision: "3", sharedState: { variables: { plan: { step: 2 }, owner: "bob" } } });
    const old = await cli(as("alice", "state", "get", id, "--revision", "2"));
    expect(old.stdout).toContain("revision 2");

    expect((await cli(as("alice", "contexts", "pause", id))).stdout).toContain("status PAUSED");
    expect((await cli(as("alice", "contexts", "resume", id))).stdout).toContain("status ACTIVE");
    const removed = await cli(as("alice", "participants", "remove", id, bob.participantId));
    expect(removed.stdout).toContain(`removed participant ${bob.participantId}`);

    const events = await cli(as("alice", "events", id));
    expect(revisionsOf(events.stdout.trim().split("\n"))).toEqual([1, 2, 3, 4, 5, 6]);
    expect(events.stdout).toMatch(/^#3 \S+ context\.state\.changed by bob: set plan\.step=2, set owner="bob"$/m);
    expect(events.stdout).toMatch(/^#4 \S+ context\.status\.changed by alice: status=PAUSED/m);
    // Not a terminal: no escape codes.
    expect(events.stdout).not.toContain("\u001b[");

    const deleted = await cli(as("alice", "contexts", "delete", id, "--force"));
    expect(deleted.stdout).toContain(`deleted context ${id}`);
    const gone = await cli(as("alice", "contexts", "get", id));
    expect(gone.code).toBe(1);
  }, 120_000);

  it("keeps who you are from MPLP_PRINCIPAL across commands, --principal overriding it, and says so when a call named no one", async () => {
    const env = { MPLP_PRINCIPAL: "alice", MPLP_ADDR: server.address };
    const created = await cli(["contexts", "create", "cli-identity", "--json"], env);
    expect(created.code, created.stderr).toBe(0);
    const id = (JSON.parse(created.stdout) as { contextId: string }).contextId;
    // The next commands, with nothing on their command line, are still alice.
    expect((await cli(["state", "set", id, "plan.step=1"], env)).code).toBe(0);
    const got = await cli(["contexts", "get", id], env);
    expect(got.code, got.stderr).toBe(0);
    expect(got.stdout).toMatch(/owner:\s+alice/);
    expect((await cli(["contexts", "list"], env)).stdout).toContain(id);
    // A flag wins over the environment for one command.
    const asBob = await cli(["contexts", "get", id, "--principal", "bob"], env);
    expect(asBob.code).toBe(1);
    expect(asBob.stderr.trim().split("\n")).toHaveLength(1);
    // Naming no one: the server takes the call as "anonymous", and the CLI says how to keep an identity.
    const anonymous = await cli(["contexts", "get", id], { MPLP_ADDR: server.address });
    expect(anonymous.code).toBe(1);
    expect(anonymous.stderr).toMatch(/^mplp-context: PERMISSION_DENIED FORBIDDEN: .*\nmplp-context: .*"anonymous".*export MPLP_PRINCIPAL=/);
  }, 90_000);

  it("shows the shared state and the participants with contexts get --full", async () => {
    const env = { MPLP_PRINCIPAL: "alice", MPLP_ADDR: server.address };
    const id = (JSON.parse((await cli(["contexts", "create", "cli-full", "--json"], env)).stdout) as { contextId: string }).contextId;
    await cli(["state", "set", id, "plan.step=2", "owner=bob"], env);
    await cli(["participants", "add", id, "bob"], env);
    const full = await cli(["contexts", "get", id, "--full"], env);
    expect(full.code, full.stderr).toBe(0);
    const [, state] = /shared state:\n(\{[\s\S]*?\n\})\n/.exec(full.stdout) ?? [];
    expect(JSON.parse(state ?? "null")).toMatchObject({ variables: { plan: { step: 2 }, owner: "bob" } });
    expect(full.stdout).toMatch(/\s+bob\s+ACTIVE\s+contributor\s+\d{4}-/);
    // Without --full neither is fetched.
    expect((await cli(["contexts", "get", id], env)).stdout).not.toContain("shared state:");
  }, 60_000);

  it("watches several contexts on one stream, each line led by its id; one refused is said on stderr and the others go on", async () => {
    const [a, b] = await Promise.all(
      ["many-a", "many-b"].map(async (name) => (JSON.parse((await cli(as("alice", "contexts", "create", name, "--json"))).stdout) as { contextId: string }).contextId),
    );
    const watch = new RunningCli(as("alice", "watch", a!, b!, MISSING, "--from", "1"));
    try {
      const of = (id: string, lines: readonly string[]): number[] => revisionsOf(lines.filter((l) => l.startsWith(`${id} `)).map((l) => l.slice(id.length + 1)));
      await watch.until("revision 1 of both", (lines) => of(a!, lines).includes(1) && of(b!, lines).includes(1));
      expect((await cli(as("alice", "state", "set", b!, "plan.step=2"))).code).toBe(0);
      await watch.until("revision 2 of the second", (lines) => of(b!, lines).includes(2));
      for (const id of [a!, b!]) expect((await cli(as("alice", "contexts", "delete", id, "--force"))).code).toBe(0);
      // Every watch has ended: the command exits, 1 for the context it was refused.
      expect(await watch.exited).toBe(1);
      expect([of(a!, watch.lines), of(b!, watch.lines)]).toEqual([[1, 2], [1, 2, 3]]);
      const notices = watch.stderr.trim().split("\n");
      expect(notices).toEqual(
        expect.arrayContaining([
          `watch: context ${MISSING}: NOT_FOUND CONTEXT_NOT_FOUND: context ${MISSING} not found`,
          `watch: context ${a} was deleted; its watch ended`,
          `watch: context ${b} was deleted; its watch ended`,
        ]),
      );
      expect(notices.at(-1)).toMatch(/^mplp-context: 1 of 3 watches ended on an error/);
    } finally {
      await watch.stop();
    }
  });

  it("prints a failure as one line with the gRPC code and reason, and exits non-zero", async () => {
    const missing = await cli(as("alice", "contexts", "get", MISSING));
    expect(missing.code).toBe(1);
    expect(missing.stdout).toBe("");
    expect(missing.stderr.trim().split("\n")).toEqual([expect.stringMatching(/^mplp-context: NOT_FOUND CONTEXT_NOT_FOUND: /)]);

    const created = await cli(as("alice", "contexts", "create", "cli-conflict", "--json"));
    const id = (JSON.parse(created.stdout) as { contextId: string }).contextId;
    await cli(as("alice", "state", "set", id, "a=1"));
    const stale = await cli(as("alice", "state", "set", id, "a=2", "--expected-revision", "1"));
    expect(stale.code).toBe(1);
    expect(stale.stderr).toMatch(/^mplp-context: ABORTED SYNC_CONFLICT: .*current_revision=2/);

    const denied = await cli(as("mallory", "contexts", "pause", id));
    expect(denied.code).toBe(1);
    expect(denied.stderr).toMatch(/^mplp-context: (PERMISSION_DENIED FORBIDDEN|NOT_FOUND CONTEXT_NOT_FOUND): /);

    const usage = await cli(as("alice", "contexts", "frobnicate"));
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain("contexts wants one of list|get|create|pause|resume|delete");

    const unreachable = await cli(["contexts", "list", "--addr", "127.0.0.1:1", "--timeout", "5000"]);
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toMatch(/^mplp-context: (UNAVAILABLE|DEADLINE_EXCEEDED)/);
  }, 90_000);
});

describe("npm run cli", () => {
  /** The pids of `pid`'s children (Linux `ps`). */
  const childrenOf = (pid: number): number[] =>
    spawnSync("ps", ["-o", "pid=", "--ppid", String(pid)], { encoding: "utf8" })
      .stdout.split("\n")
      .map((line) => Number(line.trim()))
      .filter((child) => child > 0);
  const alive = (pid: number): boolean => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };

  it("runs the CLI as npm's own child (exec), so killing npm by its pid ends the long-running command too", async () => {
    // watch keeps retrying an address where nothing listens: a long-running command with no server needed.
    const npm = spawn("npm", ["run", "--silent", "cli", "--", "watch", MISSING, "--addr", "127.0.0.1:1"], {
      env: { PATH: process.env["PATH"] ?? "", HOME: process.env["HOME"] ?? "" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const npmExited = once(npm, "exit");
    let child: number | undefined;
    try {
      // The child becomes node itself (npm's `sh -c` execs it), not a shell that would keep node
      // running after its own death. Until the exec the child is still the shell: wait for it.
      [child] = await eventually("npm's child process to be the CLI", async () => {
        const [first] = childrenOf(npm.pid!);
        if (first === undefined) return undefined;
        const argv = readFileSync(`/proc/${first}/cmdline`, "utf8").split("\0");
        return argv.includes("src/cli/main.ts") && argv.includes("watch") ? [first] : undefined;
      });
      // npm passes the signal to its child; were that a shell, node would be left running without a parent.
      npm.kill("SIGTERM");
      await npmExited;
      await eventually("the CLI to exit", async () => (alive(child!) ? undefined : true));
    } finally {
      if (npm.exitCode === null && npm.signalCode === null) npm.kill("SIGKILL");
      // On failure, leave nothing running: the child and (were it a shell) its node.
      for (const pid of child === undefined ? [] : [...childrenOf(child), child]) if (alive(pid)) process.kill(pid, "SIGKILL");
    }
  }, 60_000);
});

describe("mplp-context participants heartbeat|keepalive", () => {
  const TTL_MS = 3_000;
  let server: ServerProcess;

  beforeAll(async () => {
    server = await startServerProcess({ PGLITE_DATA_DIR: "memory://", PRESENCE_TTL_MS: String(TTL_MS), SWEEP_INTERVAL_MS: "50" });
  });

  afterAll(async () => {
    await server?.stop();
  });

  it("renews a lease once, keeps a participant someone else added present until stopped, and lets the lease lapse after", async () => {
    const env = { MPLP_ADDR: server.address, MPLP_PRINCIPAL: "alice" };
    const client = connect({ address: server.address, principal: "alice" });
    try {
      const { context } = await client.contexts.createContext({ context: { name: "kept", type: ContextType.COLLABORATIVE } });
      const contextId = context!.contextId;
      const { participant } = await client.participants.addParticipant({ contextId, participant: { agentId: "bob" } });
      const participantId = participant!.participantId;
      const joinedLease = Number(participant!.leaseExpiresAt!.seconds) * 1000 + participant!.leaseExpiresAt!.nanos / 1e6;
      const lease = async () => (await client.participants.getParticipant({ contextId, participantId })).participant!;

      // alice, the owner, may renew the lease of a participant she added.
      const beat = await cli(["participants", "heartbeat", contextId, participantId], env);
      expect(beat.code, beat.stderr).toBe(0);
      expect(beat.stdout).toMatch(new RegExp(`^renewed participant ${participantId} of context ${contextId}: ACTIVE, lease until \\d{4}-`));

      // bob keeps himself present.
      const keep = new RunningCli(["participants", "keepalive", contextId, participantId, "--interval", "200"], { MPLP_ADDR: server.address, MPLP_PRINCIPAL: "bob" });
      try {
        await keep.until("the present line", (lines) => lines.some((l) => l.startsWith(`keeping participant ${participantId} of context ${contextId} present: ACTIVE`)));
        // From its first renewal on (a CLI process can take longer than the TTL to start on a busy
        // machine, so the heartbeat's lease may lapse before it): renewed after the lease it joined
        // with would have lapsed, and never INACTIVE in between.
        const renewedAt = Number((await client.contexts.getContext({ contextId })).context!.revision);
        await eventually("a renewal past the joining lease", async () => {
          const p = await lease();
          const until = Number(p.leaseExpiresAt!.seconds) * 1000 + p.leaseExpiresAt!.nanos / 1e6;
          return until >= joinedLease + TTL_MS ? p : undefined;
        });
        expect((await lease()).status).toBe(ParticipantStatus.ACTIVE);
        const { events } = await client.contexts.listContextEvents({ contextId, pageSize: 1000 });
        expect(events.filter((e) => e.reason === "lease expired" && Number(e.revision) > renewedAt)).toEqual([]);
      } finally {
        expect(await keep.stop()).toBe(0);
      }
      expect(keep.lines.at(-1)).toMatch(new RegExp(`^stopped renewing participant ${participantId}; its lease runs out at \\d{4}-.*INACTIVE$`));
      expect(keep.lines).toHaveLength(2);
      // Nobody renews it now: the lease lapses.
      await eventually("the lease to lapse", async () => ((await lease()).status === ParticipantStatus.INACTIVE ? true : undefined));

      // A participant that is not there: one line, exit 1.
      const refused = await cli(["participants", "keepalive", contextId, "00000000-0000-4000-8000-000000000000"], env);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(/^mplp-context: NOT_FOUND PARTICIPANT_NOT_FOUND/);
    } finally {
      await client.close();
    }
  }, 120_000);
});

describe("mplp-context watch", () => {
  let dataDir: string;
  let first: ServerProcess | undefined;
  let second: ServerProcess | undefined;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "mplp-cli-watch-"));
  });

  afterAll(async () => {
    await first?.stop();
    await second?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it("prints each event of a scripted session once, in order, across a server restart", async () => {
    first = await startServerProcess({ PGLITE_DATA_DIR: dataDir });
    const port = first.port;
    let client: MplpClient = connect({ address: first.address, principal: "alice" });
    const { context } = await client.contexts.createContext({ context: { name: "watched", type: ContextType.COLLABORATIVE } });
    const contextId = context!.contextId;

    const watch = new RunningCli(["watch", contextId, "--from", "1", "--addr", first.address, "--principal", "alice"]);
    try {
      await watch.until("revision 1", (lines) => revisionsOf(lines).includes(1));
      const { participant } = await client.participants.addParticipant({ contextId, participant: { agentId: "bob", roles: ["contributor"] } });
      await client.contexts.updateSharedState({ contextId, changes: [setVar("plan.step", 1)] });
      await client.contexts.updateSharedState({ contextId, changes: [setVar("plan.step", 2)] });
      await watch.until("revision 4", (lines) => revisionsOf(lines).includes(4));
      await client.close();

      // The server goes away; the watch must notice, and come back once another one serves the same data.
      expect(await first.stop()).toBe(0);
      await watch.until("the disconnect notice", () => watch.stderr.includes("resuming from revision 5"));
      second = await startServerProcess({ PGLITE_DATA_DIR: dataDir, GRPC_PORT: String(port) });
      // Back before any new event: it says so at once, with the revision it resumes from.
      await watch.until("the reconnect notice", () => watch.stderr.includes("reconnected; resumed from revision 5"));
      client = connect({ address: second.address, principal: "alice" });
      await client.contexts.updateSharedState({ contextId, changes: [setVar("plan.step", 3)] });
      await client.participants.removeParticipant({ contextId, participantId: participant!.participantId, reason: "done" });
      await client.contexts.transitionContext({ contextId, target: { case: "status", value: 2 } });
      await watch.until("revision 7", (lines) => revisionsOf(lines).includes(7));
      await client.close();

      expect(revisionsOf(watch.lines)).toEqual([1, 2, 3, 4, 5, 6, 7]);
      const names = watch.lines.map((line) => line.split(" ")[2]);
      expect(names).toEqual([
        "context.created",
        "context.participant.joined",
        "context.state.changed",
        "context.state.changed",
        "context.state.changed",
        "context.participant.left",
        "context.status.changed",
      ]);
      expect(watch.lines[4]).toMatch(/set plan\.step=3$/);
      expect(watch.lines[5]).toContain("(reason: done)");
      // However many attempts the outage took (the second server needs seconds to start): one line when
      // the server went, one when it came back.
      expect(watch.stderr.trim().split("\n")).toEqual([
        expect.stringMatching(/^watch: disconnected \(UNAVAILABLE.*\); retrying until a server takes the stream back, then resuming from revision 5$/),
        "watch: reconnected; resumed from revision 5",
      ]);
    } finally {
      expect(await watch.stop()).toBe(0);
    }
  }, 120_000);
});
