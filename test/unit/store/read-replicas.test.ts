import { describe, expect, it, vi } from "vitest";
import { AppError } from "../../../src/domain/app-error.js";
import { lagOf, parseLsn, ReadReplicas, type ReadReplicaOptions, type ReplicaProbe, type ReplicaTarget } from "../../../src/store/read-replicas.js";
import { captureLog } from "../../e2e/support/log-capture.js";

/** Where the fake primary's WAL stands (it never moves in the selector tests: an idle primary). */
const PRIMARY_LSN = 1_000n;
/** Replayed all the primary has, though its last replayed commit is an hour old: an idle primary. */
const caughtUp: ReplicaProbe = { inRecovery: true, replayLsn: PRIMARY_LSN, replayAgeMs: 3_600_000 };
/** Behind the primary's position, its last replayed commit `ms` old. */
const behind = (ms: number | null): ReplicaProbe => ({ inRecovery: true, replayLsn: PRIMARY_LSN - 1n, replayAgeMs: ms });

/** A fake replica: its probe answers `answer` (or throws it, or never answers). */
interface FakeReplica extends ReplicaTarget<string> {
  answer: ReplicaProbe | Error | "hang";
  probes: number;
  closed: boolean;
}

function fake(name: string, answer: FakeReplica["answer"] = caughtUp): FakeReplica {
  const replica: FakeReplica = {
    name,
    handle: name,
    answer,
    probes: 0,
    closed: false,
    probe() {
      replica.probes++;
      const answer = replica.answer;
      if (answer === "hang") return new Promise(() => {});
      return answer instanceof Error ? Promise.reject(answer) : Promise.resolve(answer);
    },
    close() {
      replica.closed = true;
      return Promise.resolve();
    },
  };
  return replica;
}

function setup(replicas: FakeReplica[], options: Partial<ReadReplicaOptions> = {}) {
  const log = captureLog("info");
  // A long interval: these tests probe by hand (probeAll) unless they start the loop.
  const primary = { position: () => Promise.resolve(PRIMARY_LSN), close: () => Promise.resolve() };
  const selector = new ReadReplicas<string>(replicas, { primary, maxLagMs: 1_000, probeIntervalMs: 60_000, probeTimeoutMs: 1_000, logger: log.logger, ...options });
  /** Where one read ran: a replica's name, or "primary". */
  const where = () => selector.read((name) => Promise.resolve(name), () => Promise.resolve("primary"));
  const messages = (level: number) => log.entries().filter((e) => e["level"] === level).map((e) => String(e["msg"]));
  return { selector, where, warnings: () => messages(40), infos: () => messages(30) };
}

const refused = () => Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5999"), { code: "ECONNREFUSED" });

describe(ReadReplicas.name, () => {
  describe("read", () => {
    it("goes to the primary until a probe has found a replica well", async () => {
      const { selector, where } = setup([fake("a")]);
      expect(await where()).toBe("primary");
      await selector.probeAll();
      expect(await where()).toBe("a");
      expect(selector.counters()).toEqual({ replica: 1, primaryFallback: 1, retriedOnPrimary: 0 });
    });

    it("takes the replicas in rotation in turn", async () => {
      const { selector, where } = setup([fake("a"), fake("b"), fake("c")]);
      await selector.probeAll();
      const served = [];
      for (let i = 0; i < 6; i++) served.push(await where());
      expect(served).toEqual(["a", "b", "c", "a", "b", "c"]);
    });

    it("skips a replica lagging past the maximum, or whose lag is unknown, and takes it back once it catches up", async () => {
      const a = fake("a", behind(1_001));
      const b = fake("b", behind(null));
      const c = fake("c", behind(1_000));
      const { selector, where } = setup([a, b, c]);
      await selector.probeAll();
      expect([await where(), await where()]).toEqual(["c", "c"]);
      expect(selector.status()).toEqual([
        { name: "a", state: "lagging", lagMs: 1_001 },
        { name: "b", state: "lagging", lagMs: null },
        { name: "c", state: "healthy", lagMs: 1_000 },
      ]);
      a.answer = caughtUp;
      await selector.probeAll();
      expect([await where(), await where()]).toEqual(["a", "c"]);
    });

    it("falls back to the primary when every replica is out", async () => {
      const { selector, where } = setup([fake("a", refused()), fake("b", behind(5_000))]);
      await selector.probeAll();
      expect(await where()).toBe("primary");
      expect(selector.counters()).toEqual({ replica: 0, primaryFallback: 1, retriedOnPrimary: 0 });
    });

    it.each([
      ["a driver connection error", refused()],
      ["a STORAGE_ERROR", new AppError("STORAGE_ERROR", "the database is unavailable", { cause: refused() })],
      ["a shutdown (57P01)", Object.assign(new Error("terminating connection due to administrator command"), { code: "57P01" })],
    ])("retries a read failed by %s on the primary, once, and leaves the replica out until a probe finds it well", async (_what, failure) => {
      const a = fake("a");
      const { selector, warnings, infos } = setup([a]);
      await selector.probeAll();
      const onReplica = vi.fn(() => Promise.reject(failure));
      const onPrimary = vi.fn(() => Promise.resolve("primary"));
      expect(await selector.read(onReplica, onPrimary)).toBe("primary");
      expect(onPrimary).toHaveBeenCalledTimes(1);
      // Out of rotation: the next read goes straight to the primary.
      expect(await selector.read(onReplica, onPrimary)).toBe("primary");
      expect(onReplica).toHaveBeenCalledTimes(1);
      expect(selector.counters()).toEqual({ replica: 0, primaryFallback: 2, retriedOnPrimary: 1 });
      expect(selector.status()[0]?.state).toBe("down");
      expect(warnings()).toEqual(["read replica a does not answer: its reads go to the primary until it is back"]);
      await selector.probeAll();
      expect(await selector.read((name) => Promise.resolve(name), onPrimary)).toBe("a");
      expect(infos()).toContain("read replica a is back in rotation");
    });

    it("retries a read a hot standby cancelled for a replay conflict (40001) on the primary, keeping the replica in rotation", async () => {
      const { selector, where } = setup([fake("a")]);
      await selector.probeAll();
      const conflict = Object.assign(new Error("canceling statement due to conflict with recovery"), { code: "40001" });
      expect(await selector.read(() => Promise.reject(conflict), () => Promise.resolve("primary"))).toBe("primary");
      expect(await where()).toBe("a");
      expect(selector.counters()).toEqual({ replica: 1, primaryFallback: 1, retriedOnPrimary: 1 });
    });

    it.each([
      ["a deadline (57014)", Object.assign(new Error("canceling statement due to statement timeout"), { code: "57014" })],
      ["a TIMEOUT", new AppError("TIMEOUT", "the deadline passed")],
      ["a query error (42P01)", Object.assign(new Error('relation "x" does not exist'), { code: "42P01" })],
    ])("passes %s to the caller without retrying, the replica staying in rotation", async (_what, failure) => {
      const { selector, where } = setup([fake("a")]);
      await selector.probeAll();
      const onPrimary = vi.fn(() => Promise.resolve("primary"));
      await expect(selector.read(() => Promise.reject(failure), onPrimary)).rejects.toBe(failure);
      expect(onPrimary).not.toHaveBeenCalled();
      expect(await where()).toBe("a");
    });
  });

  describe("probes", () => {
    it("log one warning per outage and one line when it ends, however many probes fail meanwhile", async () => {
      const a = fake("a");
      const { selector, warnings, infos } = setup([a]);
      await selector.probeAll();
      a.answer = refused();
      for (let i = 0; i < 5; i++) await selector.probeAll();
      a.answer = caughtUp;
      for (let i = 0; i < 3; i++) await selector.probeAll();
      a.answer = behind(2_000);
      for (let i = 0; i < 3; i++) await selector.probeAll();
      expect(warnings()).toEqual([
        "read replica a does not answer: its reads go to the primary until it is back",
        "read replica a lags behind the primary: its reads go to the primary until it is back",
      ]);
      expect(infos()).toEqual(["read replica a is back in rotation"]);
    });

    it("count a probe that does not answer in time as the replica being down, and queue no second one behind it", async () => {
      const a = fake("a");
      const { selector, where } = setup([a], { probeTimeoutMs: 20 });
      await selector.probeAll();
      a.answer = "hang";
      await selector.probeAll();
      expect(selector.status()[0]?.state).toBe("down");
      expect(await where()).toBe("primary");
      const probes = a.probes;
      await selector.probeAll();
      expect(a.probes).toBe(probes);
    });

    it("measure lags from the primary's last known position while the primary does not answer", async () => {
      const a = fake("a");
      let primaryUp = true;
      const primary = { position: () => (primaryUp ? Promise.resolve(PRIMARY_LSN) : Promise.reject(refused())), close: () => Promise.resolve() };
      const log = captureLog("info");
      const selector = new ReadReplicas<string>([a], { primary, maxLagMs: 30, probeIntervalMs: 60_000, probeTimeoutMs: 1_000, logger: log.logger });
      await selector.probeAll();
      expect(selector.status()[0]?.state).toBe("healthy");
      primaryUp = false;
      await new Promise((resolve) => setTimeout(resolve, 60));
      await selector.probeAll();
      // Nothing is known of what the primary wrote since: the replica may be that far behind.
      expect(selector.status()[0]).toMatchObject({ state: "lagging", lagMs: expect.any(Number) });
      expect(selector.status()[0]?.lagMs).toBeGreaterThanOrEqual(60);
      primaryUp = true;
      await selector.probeAll();
      expect(selector.status()[0]?.state).toBe("healthy");
    });

    it("run in the background once started, and stop when closed", async () => {
      const a = fake("a", refused());
      const { selector, where } = setup([a], { probeIntervalMs: 10 });
      await selector.start();
      expect(await where()).toBe("primary");
      a.answer = caughtUp;
      await vi.waitFor(() => expect(selector.status()[0]?.state).toBe("healthy"));
      expect(await where()).toBe("a");
      await selector.close();
      expect(a.closed).toBe(true);
      const probes = a.probes;
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(a.probes).toBe(probes);
    });
  });

  describe(lagOf.name, () => {
    const now = 10_000_000;
    const primary = (...samples: Array<[msAgo: number, lsn: bigint]>) => samples.map(([ago, lsn]) => ({ at: now - ago, lsn }));

    it("is 0 for a server that is not a standby", () => {
      expect(lagOf({ inRecovery: false, replayLsn: null, replayAgeMs: null }, [], now)).toBe(0);
    });

    it("is about 0 on an idle primary: the replica replayed the latest position, however old its last commit", () => {
      const idle = primary([3_600_000, 500n], [1_000, 500n], [2, 500n]);
      expect(lagOf({ inRecovery: true, replayLsn: 500n, replayAgeMs: 3_600_000 }, idle, now)).toBe(2);
    });

    it("counts from the last time the primary was no further than the replica's replay: a backlog it has not even received", () => {
      // The replica was away; it replayed all it had (up to 500), the primary has been at 900 for 30 s.
      const samples = primary([40_000, 400n], [31_000, 500n], [30_000, 900n], [2, 900n]);
      expect(lagOf({ inRecovery: true, replayLsn: 500n, replayAgeMs: 3_600_000 }, samples, now)).toBe(31_000);
    });

    it("takes the replay age when that is the tighter bound (steady writes, samples a probe interval apart)", () => {
      const busy = primary([502, 1_000n], [2, 2_000n]);
      expect(lagOf({ inRecovery: true, replayLsn: 1_990n, replayAgeMs: 4 }, busy, now)).toBe(4);
      // Clocks of two hosts disagree: a negative age is no lag, not a negative one.
      expect(lagOf({ inRecovery: true, replayLsn: 1_990n, replayAgeMs: -30 }, busy, now)).toBe(0);
    });

    it("is unknown (null) when the replica replayed nothing the samples reach and no commit yet", () => {
      expect(lagOf({ inRecovery: true, replayLsn: 10n, replayAgeMs: null }, primary([2, 500n]), now)).toBeNull();
      expect(lagOf({ inRecovery: true, replayLsn: null, replayAgeMs: null }, primary([2, 500n]), now)).toBeNull();
    });
  });

  it("parses WAL positions", () => {
    expect(parseLsn("0/3000000")).toBe(0x3000000n);
    expect(parseLsn("16/B374D848")).toBe((0x16n << 32n) + 0xb374d848n);
    expect(() => parseLsn("nope")).toThrow("not a WAL position");
  });
});
