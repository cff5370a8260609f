/**
 * Hostile input over the wire, on PGlite: property-based fuzzing (fast-check) of every method of
 * both services with generated requests (every field, hostile values: see fuzz-arbitraries.ts),
 * random bytes as the whole request on every method (streams included), a Struct nested far past
 * any stack, and a request past the size limit. No call may end INTERNAL or UNKNOWN, the server
 * must keep serving, and afterwards the database must hold no partial write: every context's
 * revision has its events (1..revision, none split), participant_count matches its members, and
 * each context's shared state equals the replay of its recorded changes.
 *
 * Runs are bounded (FUZZ_RUNS per method, default 25) to keep the suite a few minutes on two
 * cores; set FUZZ_RUNS higher to dig deeper, FUZZ_SEED to replay a failure.
 */
import { toBinary, type DescMessage } from "@bufbuild/protobuf";
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import * as grpc from "@grpc/grpc-js";
import { asc, eq } from "drizzle-orm";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ContextType, Visibility } from "../../gen/mplp/context/v1/context_pb.js";
import { ContextService } from "../../gen/mplp/context/v1/context_service_pb.js";
import { ParticipantService } from "../../gen/mplp/context/v1/participant_service_pb.js";
import { StateOperation } from "../../gen/mplp/context/v1/shared_state_pb.js";
import type { App } from "../../src/app.js";
import * as schema from "../../src/store/schema.js";
import { createClient, errorDetails } from "../../src/transport/grpc-client.js";
import { valueOut } from "../../src/transport/proto-values.js";
import { startTestApp } from "./support/app.js";
import { MessageArbitraries, nested, type FuzzIds } from "./support/fuzz-arbitraries.js";
import { healthStatus } from "./support/open-services.js";
import { as, type ContextClient, type ParticipantClient } from "./support/participants.js";

const RUNS = Number(process.env["FUZZ_RUNS"] ?? 25);
const SEED = process.env["FUZZ_SEED"] === undefined ? undefined : Number(process.env["FUZZ_SEED"]);
/** What no call may ever answer. */
const FORBIDDEN_CODES = new Set([grpc.status.INTERNAL, grpc.status.UNKNOWN]);
const PRINCIPALS = ["alice", "bob", "carol", "anonymous", "' OR '1'='1", "x".repeat(255)];

/** The status a call ended with: OK, or its code (a non-gRPC failure is rethrown). */
function codeOf(error: unknown): grpc.status {
  try {
    return errorDetails(error).code;
  } catch {
    throw error;
  }
}

/** Fails naming the method, status and message when a call answered INTERNAL or UNKNOWN. */
function expectHandled(method: string, code: grpc.status, error?: unknown): void {
  if (FORBIDDEN_CODES.has(code)) {
    throw new Error(`${method} answered ${grpc.status[code]}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** Calls `method` of `client` with `request` as `principal`; resolves with the status code. */
async function invoke(client: Record<string, unknown>, kind: string, localName: string, request: unknown, principal: string): Promise<grpc.status> {
  const options = { ...as(principal), deadline: Date.now() + 10_000 };
  const call = client[localName] as (...args: unknown[]) => unknown;
  try {
    if (kind === "unary") {
      await (call(request, options) as Promise<unknown>);
    } else if (kind === "server_streaming") {
      // A watch never ends on its own: read what comes within a moment, then hang up.
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(), 300);
      try {
        let n = 0;
        for await (const _ of call(request, { ...options, signal: controller.signal }) as AsyncIterable<unknown>) if (++n >= 2) break;
      } finally {
        clearTimeout(timer);
      }
    } else {
      async function* requests(): AsyncGenerator<unknown> {
        for (const r of request as unknown[]) yield r;
      }
      for await (const _ of call(requests(), options) as AsyncIterable<unknown>) {
        // KeepAlive answers each renewal; keep reading until the server ends the stream.
      }
    }
    return grpc.status.OK;
  } catch (error) {
    const code = codeOf(error);
    expectHandled(localName, code, error);
    return code;
  }
}

function encodable(schema: DescMessage, request: unknown): boolean {
  try {
    for (const message of Array.isArray(request) ? request : [request]) toBinary(schema, message as never);
    return true;
  } catch {
    return false;
  }
}

/** Sends `bytes` as the whole request message of `path`, for any method kind; resolves with the status code. */
function rawCall(address: string, path: string, streaming: { request: boolean; response: boolean }, bytes: Uint8Array): Promise<grpc.status> {
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  const identity = (b: Buffer): Buffer => b;
  const metadata = new grpc.Metadata();
  metadata.set("x-principal-id", "alice");
  const options = { deadline: Date.now() + 5_000 };
  const buffer = Buffer.from(bytes);
  return new Promise<grpc.status>((resolve) => {
    const done = (code: grpc.status): void => {
      client.close();
      resolve(code);
    };
    if (!streaming.request && !streaming.response) {
      client.makeUnaryRequest(path, identity, identity, buffer, metadata, options, (error) => done(error ? error.code : grpc.status.OK));
      return;
    }
    const call = streaming.request
      ? client.makeBidiStreamRequest(path, identity, identity, metadata, options)
      : client.makeServerStreamRequest(path, identity, identity, buffer, metadata, options);
    let received = 0;
    call.on("data", () => {
      // A request that happens to decode may open a real watch: one message is enough.
      if (++received >= 1) call.cancel();
    });
    call.on("error", (error: grpc.ServiceError) => done(error.code));
    call.on("end", () => done(grpc.status.OK));
    if (streaming.request) {
      const duplex = call as grpc.ClientDuplexStream<Buffer, Buffer>;
      duplex.write(buffer);
      duplex.end();
    }
  });
}

/**
 * A google.protobuf.Value holding a Struct nested `depth` levels deep ({"a": {"a": …}}), encoded
 * without recursion (a recursive encoder would overflow the stack first, which is the point).
 */
function deepValueBytes(depth: number): Uint8Array {
  const varintLength = (n: number): number => (n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5);
  // Sizes from the innermost Value (null_value = 0: tag 0x08, 0x00) outwards.
  const valueSize: number[] = [2];
  for (let i = 1; i <= depth; i++) {
    const inner = valueSize[i - 1]!;
    const entry = 3 + 1 + varintLength(inner) + inner; // key "a" (tag, len, byte) + value (tag, len, bytes)
    const struct = 1 + varintLength(entry) + entry;
    valueSize.push(1 + varintLength(struct) + struct);
  }
  const out = new Uint8Array(valueSize[depth]!);
  let at = 0;
  const varint = (n: number): void => {
    while (n >= 0x80) {
      out[at++] = (n & 0x7f) | 0x80;
      n >>>= 7;
    }
    out[at++] = n;
  };
  for (let i = depth; i >= 1; i--) {
    const inner = valueSize[i - 1]!;
    const entry = 3 + 1 + varintLength(inner) + inner;
    const struct = 1 + varintLength(entry) + entry;
    out[at++] = 0x2a; // Value.struct_value (5, length-delimited)
    varint(struct);
    out[at++] = 0x0a; // Struct.fields (1), a map entry
    varint(entry);
    out.set([0x0a, 0x01, 0x61, 0x12], at); // key (1) = "a", then value (2)
    at += 4;
    varint(inner);
  }
  out.set([0x08, 0x00], at); // Value.null_value
  return out;
}

/** Wraps bytes as a length-delimited field. */
function field(tag: number, bytes: Uint8Array): Uint8Array {
  const length: number[] = [];
  let n = bytes.length;
  while (n >= 0x80) {
    length.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  length.push(n);
  return Uint8Array.from([tag, ...length, ...bytes]);
}

describe("hostile input on every method (PGlite)", () => {
  let app: App;
  let address: string;
  let contexts: ContextClient;
  let participants: ParticipantClient;
  const ids: { contextIds: string[]; participantIds: string[] } = { contextIds: [], participantIds: [] };

  beforeAll(async () => {
    app = await startTestApp({ PGLITE_DATA_DIR: "memory://", SHARED_STATE_MAX_BYTES: "65536" });
    address = `127.0.0.1:${app.port}`;
    contexts = createClient(ContextService, address);
    participants = createClient(ParticipantService, address);
    // Real targets, so generated calls reach the code that writes: a PRIVATE and a PUBLIC context with members.
    for (const visibility of [Visibility.PRIVATE, Visibility.PUBLIC]) {
      const { context } = await contexts.createContext({ context: { name: `seed-${visibility}`, type: ContextType.COLLABORATIVE, accessControl: { visibility } } }, as("alice"));
      ids.contextIds.push(context!.contextId);
      const added = await participants.batchAddParticipants(
        { contextId: context!.contextId, participants: [{ agentId: "bob", roles: ["contributor"] }, { agentId: "carol", roles: ["admin"] }] },
        as("alice"),
      );
      ids.participantIds.push(...added.participants.map((p) => p.participantId));
    }
  });

  afterAll(async () => {
    contexts?.close();
    participants?.close();
    await app?.stop();
  });

  const services: ReadonlyArray<GenService<GenServiceMethods>> = [ContextService, ParticipantService];
  const methods = services.flatMap((service) => service.methods.map((method) => ({ service, method })));

  describe("generated requests", () => {
    for (const { service, method } of methods) {
      it(`${method.name}: never INTERNAL or UNKNOWN`, { timeout: 120_000 }, async () => {
        const client = (service === ContextService ? contexts : participants) as unknown as Record<string, unknown>;
        const arbitraries = new MessageArbitraries(ids as FuzzIds);
        const one = arbitraries.message(method.input as DescMessage);
        const request = method.methodKind === "bidi_streaming" || method.methodKind === "client_streaming" ? fc.array(one, { minLength: 1, maxLength: 3 }) : one;
        await fc.assert(
          fc.asyncProperty(request, fc.constantFrom(...PRINCIPALS), async (req, principal) => {
            // A value this client cannot even encode (its stack ends first) says nothing about the server.
            fc.pre(encodable(method.input as DescMessage, req));
            const code = await invoke(client, method.methodKind, method.localName, req, principal);
            expect(FORBIDDEN_CODES.has(code)).toBe(false);
          }),
          { numRuns: RUNS, ...(SEED === undefined ? {} : { seed: SEED }) },
        );
      });
    }
  });

  describe("random bytes as the whole request", () => {
    for (const { service, method } of methods) {
      it(`${method.name}: never INTERNAL or UNKNOWN`, { timeout: 120_000 }, async () => {
        const path = `/${service.typeName}/${method.name}`;
        const streaming = {
          request: method.methodKind === "bidi_streaming" || method.methodKind === "client_streaming",
          response: method.methodKind === "bidi_streaming" || method.methodKind === "server_streaming",
        };
        const bytes = fc.oneof(
          fc.uint8Array({ maxLength: 512 }),
          // A truncated length prefix, a field with a huge declared length, an invalid wire type.
          fc.constantFrom(Uint8Array.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]), Uint8Array.from([0x0a, 0x05, 0x61]), Uint8Array.from([0x0f, 0x01]), Uint8Array.from([0xff])),
        );
        await fc.assert(
          fc.asyncProperty(bytes, async (b) => {
            const code = await rawCall(address, path, streaming, b);
            expectHandled(method.name, code);
          }),
          { numRuns: RUNS, ...(SEED === undefined ? {} : { seed: SEED }) },
        );
      });
    }
  });

  it("answers a Struct nested 100 000 levels deep INVALID_ARGUMENT, for a unary call and for a stream's message", async () => {
    // A context of its own: the generated cases before this one may have deleted or changed the seeded ones.
    const { context } = await contexts.createContext({ context: { name: "deep-struct-target", type: ContextType.COLLABORATIVE } }, as("alice"));
    const contextId = context!.contextId;
    const change = field(0x1a, deepValueBytes(100_000)); // StateChange.value (3)
    const request = Uint8Array.from([...field(0x0a, new TextEncoder().encode(contextId)), ...field(0x12, Uint8Array.from([0x08, 0x01, ...field(0x12, new TextEncoder().encode("a")), ...change]))]);
    expect(await rawCall(address, "/mplp.context.v1.ContextService/UpdateSharedState", { request: false, response: false }, request)).toBe(grpc.status.INVALID_ARGUMENT);
    expect(await rawCall(address, "/mplp.context.v1.ParticipantService/KeepAlive", { request: true, response: true }, Uint8Array.from([0x0a, 0xff, 0x01]))).toBe(
      grpc.status.INVALID_ARGUMENT,
    );
    // 40 levels decode fine and are refused by validation, naming the field; nothing is written.
    const before = await contexts.getSharedState({ contextId }, as("alice"));
    const err = await contexts
      .updateSharedState({ contextId, changes: [{ operation: StateOperation.SET, path: "deep", value: valueOut(nested(40)) }] }, as("alice"))
      .then(() => undefined, errorDetails);
    expect([err?.code, err?.violations[0]?.field]).toEqual([grpc.status.INVALID_ARGUMENT, "changes[0].value"]);
    expect((await contexts.getSharedState({ contextId }, as("alice"))).revision).toBe(before.revision);
  });

  it("refuses a request past GRPC_MAX_RECEIVE_MESSAGE_BYTES with RESOURCE_EXHAUSTED", async () => {
    // GetContextRequest.context_id (1) declared 5 MiB long (varint 0x80 0x80 0xc0 0x02), then the bytes.
    const prefix = [0x0a, 0x80, 0x80, 0xc0, 0x02];
    const bytes = new Uint8Array(prefix.length + 5 * 1024 * 1024).fill(0x61);
    bytes.set(prefix, 0);
    expect(await rawCall(address, "/mplp.context.v1.ContextService/GetContext", { request: false, response: false }, bytes)).toBe(grpc.status.RESOURCE_EXHAUSTED);
  });

  it("leaves a consistent database behind, and keeps serving", async () => {
    expect(await healthStatus(address)).toBe("SERVING");
    const { db } = app.database;
    const rows = await db.select().from(schema.contexts);
    expect(rows.length).toBeGreaterThan(0);
    for (const row of rows) {
      const members = await db.select().from(schema.participants).where(eq(schema.participants.contextId, row.contextId));
      expect(row.participantCount, `participant_count of ${row.contextId}`).toBe(members.length);
      const events = await db
        .select({ revision: schema.contextEvents.revision, seq: schema.contextEvents.seq })
        .from(schema.contextEvents)
        .where(eq(schema.contextEvents.contextId, row.contextId))
        .orderBy(asc(schema.contextEvents.revision), asc(schema.contextEvents.seq));
      // Every revision from the first retained one to the context's own has its events, numbered 0, 1, … within it.
      const revisions = [...new Set(events.map((e) => e.revision))];
      expect(revisions, `event revisions of ${row.contextId}`).toEqual(Array.from({ length: row.revision - row.compactRevision }, (_, i) => row.compactRevision + i + 1));
      for (const revision of revisions) {
        const seqs = events.filter((e) => e.revision === revision).map((e) => e.seq);
        expect(seqs).toEqual(seqs.map((_, i) => i));
      }
      // The stored state is what replaying the recorded changes gives (GetSharedState at a past revision
      // replays from snapshots and checks each step's checksum).
      const latest = await contexts.getSharedState({ contextId: row.contextId }, as(row.owner));
      const replayed = await contexts.getSharedState({ contextId: row.contextId, revision: BigInt(row.revision) }, as(row.owner));
      expect(replayed.checksum, `state of ${row.contextId}`).toBe(latest.checksum);
    }
  });
});
