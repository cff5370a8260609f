/**
 * Authentication over the wire (AUTH_JWT_SECRET with issuer and audience required): the principal
 * is the token's sub and nothing else; bad tokens are UNAUTHENTICATED on unary calls and streams;
 * streams end when their token expires; health and reflection stay open; every denial is audited
 * without the token; a principal may hold WATCH_MAX_PER_PRINCIPAL watches; the rate limit answers
 * RATE_LIMITED with RetryInfo to the one principal over it.
 */
import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ContextType, Visibility } from "../../gen/mplp/context/v1/context_pb.js";
import { ContextService } from "../../gen/mplp/context/v1/context_service_pb.js";
import { ParticipantService } from "../../gen/mplp/context/v1/participant_service_pb.js";
import type { App } from "../../src/app.js";
import { createClient } from "../../src/transport/grpc-client.js";
import { startTestApp } from "./support/app.js";
import { failure } from "./support/failure.js";
import { captureLog, type CapturedLog } from "./support/log-capture.js";
import { healthStatus, reflectedServices } from "./support/open-services.js";
import { type ContextClient, type ParticipantClient } from "./support/participants.js";
import { JWT_ENV, signHs256, TEST_AUDIENCE, TEST_ISSUER, tokenFor, withToken, type TokenOptions } from "./support/tokens.js";

const valid = (principal: string, extra: TokenOptions = {}) => tokenFor(principal, { issuer: TEST_ISSUER, audience: TEST_AUDIENCE, ...extra });
const asToken = (principal: string, extra: TokenOptions = {}) => withToken(valid(principal, extra));

describe("authentication with JWTs (PGlite)", () => {
  let app: App;
  let log: CapturedLog;
  let contexts: ContextClient;
  let participants: ParticipantClient;
  let address: string;

  beforeAll(async () => {
    log = captureLog();
    app = await startTestApp(
      {
        ...JWT_ENV,
        AUTH_JWT_ISSUER: TEST_ISSUER,
        AUTH_JWT_AUDIENCE: TEST_AUDIENCE,
        // No leeway, so a token "expiring in 2 s" does so in 2 s (the default skew is 30 s).
        AUTH_CLOCK_SKEW_SECONDS: "0",
        WATCH_MAX_PER_PRINCIPAL: "2",
        PGLITE_DATA_DIR: "memory://",
      },
      log.logger,
    );
    address = `127.0.0.1:${app.port}`;
    contexts = createClient(ContextService, address);
    participants = createClient(ParticipantService, address);
  });
  afterAll(async () => {
    contexts?.close();
    participants?.close();
    await app?.stop();
  });

  async function privateContext(owner: string, name: string): Promise<string> {
    const { context } = await contexts.createContext({ context: { name, type: ContextType.PIPELINE, accessControl: { visibility: Visibility.PRIVATE } } }, asToken(owner));
    return context!.contextId;
  }

  it("takes the principal from the token's sub: alice's token with x-principal-id bob still acts as alice", async () => {
    const { context } = await contexts.createContext(
      { context: { name: "alices", type: ContextType.PIPELINE } },
      withToken(valid("alice"), { "x-principal-id": "bob" }),
    );
    expect(context?.accessControl?.owner).toBe("alice");
    const bobs = await privateContext("bob", "bobs");
    const denied = await failure(contexts.getContext({ contextId: bobs }, withToken(valid("alice"), { "x-principal-id": "bob" })));
    expect([denied.code, denied.reason]).toEqual([status.PERMISSION_DENIED, "FORBIDDEN"]);
    expect((await contexts.getContext({ contextId: bobs }, asToken("bob"))).context?.name).toBe("bobs");
  });

  const now = () => Math.floor(Date.now() / 1000);
  const BAD_TOKENS: ReadonlyArray<[string, () => Record<string, string>]> = [
    ["no token at all", () => ({})],
    ["x-principal-id alone", () => ({ "x-principal-id": "alice" })],
    ["a forged signature", () => withToken(tokenFor("alice", { issuer: TEST_ISSUER, audience: TEST_AUDIENCE, secret: "not-the-secret-but-long-enough-000000" })).metadata],
    ["an expired token", () => withToken(valid("alice", { expiresInS: -5 })).metadata],
    ["a wrong issuer", () => withToken(tokenFor("alice", { issuer: "https://evil.test", audience: TEST_AUDIENCE })).metadata],
    ["a wrong audience", () => withToken(tokenFor("alice", { issuer: TEST_ISSUER, audience: "someone-else" })).metadata],
    ["no sub", () => withToken(signHs256({ iss: TEST_ISSUER, aud: TEST_AUDIENCE, exp: now() + 60 })).metadata],
    ["alg none", () => withToken(`${Buffer.from('{"alg":"none"}').toString("base64url")}.${Buffer.from(JSON.stringify({ sub: "alice", iss: TEST_ISSUER, aud: TEST_AUDIENCE, exp: now() + 60 })).toString("base64url")}.`).metadata],
    ["a Basic credential", () => ({ authorization: "Basic YWxpY2U6cGFzc3dvcmQ=" })],
  ];

  describe.each(BAD_TOKENS)("%s", (_what, metadata) => {
    it("is UNAUTHENTICATED / UNAUTHORIZED on unary calls, WatchContext and KeepAlive", async () => {
      const unary = await failure(contexts.listContexts({}, { metadata: metadata() }));
      expect([unary.code, unary.reason]).toEqual([status.UNAUTHENTICATED, "UNAUTHORIZED"]);
      const watch = await failure((async () => {
        for await (const _ of contexts.watchContext({ contextId: "00000000-0000-4000-8000-000000000000" }, { metadata: metadata() })) break;
      })());
      expect([watch.code, watch.reason]).toEqual([status.UNAUTHENTICATED, "UNAUTHORIZED"]);
      async function* one() {
        yield { contextId: "00000000-0000-4000-8000-000000000000", participantId: "00000000-0000-4000-8000-000000000000" };
      }
      const keepAlive = await failure((async () => {
        for await (const _ of participants.keepAlive(one(), { metadata: metadata() })) break;
      })());
      expect([keepAlive.code, keepAlive.reason]).toEqual([status.UNAUTHENTICATED, "UNAUTHORIZED"]);
    });
  });

  it("keeps health and reflection open to callers without a token", async () => {
    expect(await healthStatus(address)).toBe("SERVING");
    expect(await reflectedServices(address)).toContain("mplp.context.v1.ContextService");
  });

  it("ends a watch opened with a token that expires in 2 s with UNAUTHENTICATED", async () => {
    const contextId = await privateContext("alice", "watched");
    const short = valid("alice", { expiresInS: 2 });
    let snapshot = false;
    const ended = await failure((async () => {
      for await (const { response } of contexts.watchContext({ contextId, sendSnapshot: true, progressIntervalMs: 200 }, withToken(short))) {
        if (response.case === "snapshot") snapshot = true;
      }
    })());
    expect(snapshot).toBe(true);
    expect([ended.code, ended.reason, ended.message]).toEqual([status.UNAUTHENTICATED, "UNAUTHORIZED", "unauthenticated: the token has expired"]);
  });

  it("ends a Watch stream, all its watches, with UNAUTHENTICATED when its token expires", async () => {
    const contextId = await privateContext("alice", "watched many");
    const short = valid("alice", { expiresInS: 2 });
    const created: bigint[] = [];
    async function* twoWatches() {
      yield { request: { case: "create" as const, value: { watchId: 1n, contextId, progressIntervalMs: 200 } } };
      yield { request: { case: "create" as const, value: { watchId: 2n, contextId, sendSnapshot: true } } };
      // The request side stays open: the stream ends on the token, not on a half-close.
      await new Promise((r) => setTimeout(r, 10_000));
    }
    const ended = await failure((async () => {
      for await (const { watchId, response } of contexts.watch(twoWatches(), withToken(short))) {
        if (response.case === "created") created.push(watchId);
      }
    })());
    expect(created.sort()).toEqual([1n, 2n]);
    expect([ended.code, ended.reason, ended.message]).toEqual([status.UNAUTHENTICATED, "UNAUTHORIZED", "unauthenticated: the token has expired"]);
  });

  it("ends a KeepAlive stream with UNAUTHENTICATED when its token expires", async () => {
    const contextId = await privateContext("alice", "kept");
    const { participant } = await participants.addParticipant({ contextId, participant: { agentId: "alice" } }, asToken("alice"));
    const short = valid("alice", { expiresInS: 2 });
    let answers = 0;
    async function* every200ms() {
      for (;;) {
        yield { contextId, participantId: participant!.participantId };
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    const ended = await failure((async () => {
      for await (const _ of participants.keepAlive(every200ms(), withToken(short))) answers++;
    })());
    expect(answers).toBeGreaterThan(0);
    expect([ended.code, ended.reason]).toEqual([status.UNAUTHENTICATED, "UNAUTHORIZED"]);
  });

  it("lets one principal hold WATCH_MAX_PER_PRINCIPAL watches, refuses the next, and not another principal's", async () => {
    const contextId = await privateContext("alice", "many-watches");
    const { participant } = await participants.addParticipant({ contextId, participant: { agentId: "bob", roles: ["viewer"] } }, asToken("alice"));
    expect(participant).toBeDefined();
    const open = async (principal: string) => {
      const controller = new AbortController();
      const stream = contexts.watchContext({ contextId, sendSnapshot: true }, { ...asToken(principal), signal: controller.signal })[Symbol.asyncIterator]();
      await stream.next();
      return { stream, close: () => controller.abort() };
    };
    const first = await open("alice");
    const second = await open("alice");
    const refused = await failure(open("alice"));
    expect([refused.code, refused.reason]).toEqual([status.RESOURCE_EXHAUSTED, "RATE_LIMITED"]);
    const bobs = await open("bob");
    first.close();
    await expect(first.stream.next()).rejects.toBeDefined();
    // The slot is given back once the server sees the cancellation.
    let again: Awaited<ReturnType<typeof open>> | undefined;
    for (let i = 0; i < 100 && again === undefined; i++) {
      again = await open("alice").catch(() => undefined);
      if (again === undefined) await new Promise((r) => setTimeout(r, 20));
    }
    expect(again).toBeDefined();
    for (const w of [second, bobs, again!]) w.close();
  });

  it("audits every denial at warn with principal, method, context id and reason, and never logs a token", async () => {
    const contextId = await privateContext("alice", "audited");
    const secretToken = valid("mallory");
    await failure(contexts.getContext({ contextId }, withToken(secretToken)));
    const forged = tokenFor("alice", { issuer: TEST_ISSUER, audience: TEST_AUDIENCE, secret: "not-the-secret-but-long-enough-000000" });
    await failure(contexts.getContext({ contextId }, withToken(forged)));
    const denials = log.entries().filter((e) => e["msg"] === "call denied" && e["contextId"] === contextId);
    expect(denials).toEqual([
      expect.objectContaining({ level: 40, audit: "denied", principal: "mallory", method: "/mplp.context.v1.ContextService/GetContext", reason: "FORBIDDEN", code: "PERMISSION_DENIED" }),
      expect.objectContaining({ level: 40, audit: "denied", principal: "unauthenticated", reason: "UNAUTHORIZED", code: "UNAUTHENTICATED", why: "unauthenticated: the token's signature does not verify" }),
    ]);
    const all = log.lines.join("\n");
    for (const token of [secretToken, forged]) {
      expect(all).not.toContain(token);
      // Not even the signature part on its own.
      expect(all).not.toContain(token.split(".")[2]);
    }
  });
});

describe("the per-principal rate limit (PGlite)", () => {
  let app: App;
  let contexts: ContextClient;
  let log: CapturedLog;

  beforeAll(async () => {
    log = captureLog();
    app = await startTestApp({ ...JWT_ENV, RATE_LIMIT_RPS: "1", RATE_LIMIT_BURST: "3", PGLITE_DATA_DIR: "memory://" }, log.logger);
    contexts = createClient(ContextService, `127.0.0.1:${app.port}`);
  });
  afterAll(async () => {
    contexts?.close();
    await app?.stop();
  });

  it("answers a burst over the limit RATE_LIMITED with a RetryInfo delay, while another principal is served", async () => {
    const alice = withToken(tokenFor("alice"));
    const outcomes = await Promise.allSettled(Array.from({ length: 6 }, () => contexts.listContexts({}, alice)));
    const ok = outcomes.filter((o) => o.status === "fulfilled").length;
    // The bucket holds 3; a refill during the burst could let one more through, never all.
    expect(ok).toBeGreaterThanOrEqual(3);
    expect(ok).toBeLessThanOrEqual(4);
    const refused = await failure(contexts.listContexts({}, alice));
    expect([refused.code, refused.reason]).toEqual([status.RESOURCE_EXHAUSTED, "RATE_LIMITED"]);
    expect(refused.retryDelayMs).toBeGreaterThan(0);
    expect(refused.retryDelayMs).toBeLessThanOrEqual(1000);
    // Bob's bucket is his own.
    const bob = withToken(tokenFor("bob"));
    for (let i = 0; i < 3; i++) await contexts.listContexts({}, bob);
    expect(log.entries().some((e) => e["msg"] === "call denied" && e["reason"] === "RATE_LIMITED" && e["principal"] === "alice")).toBe(true);
    // Waiting as told is enough.
    await new Promise((r) => setTimeout(r, refused.retryDelayMs! + 50));
    await contexts.listContexts({}, alice);
  });
});
