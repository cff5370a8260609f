import { create, toBinary } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { ContextSchema, type ContextType } from "../../../gen/mplp/context/v1/context_pb.js";
import {
  CreateContextResponseSchema,
  GetContextResponseSchema,
  ListContextsResponseSchema,
  TransitionContextResponseSchema,
  UpdateContextResponseSchema,
} from "../../../gen/mplp/context/v1/context_service_pb.js";
import {
  encodeContextAnswer,
  encodeContextMessage,
  encodeGetContextResponse,
  encodeListContextsResponse,
  listContextsOut,
  sharedContextOut,
} from "../../../src/transport/context-encoding.js";
import { encoderFor } from "../../../src/transport/response-encoders.js";
import { contextOut } from "../../../src/transport/context-mapper.js";
import { participantOut } from "../../../src/transport/participant-mapper.js";
import { at, makeContext, withoutState } from "../../support/context-fixtures.js";
import { makeParticipant } from "../../support/participant-fixtures.js";

const contexts = [
  withoutState(makeContext({ name: "plain" })),
  withoutState(makeContext({ name: "ünïcode ✓", description: "multi\nline", tags: ["a", "b"], visibility: "PUBLIC", revision: 7, participantCount: 3 })),
  withoutState(makeContext({ name: "no-expiry", expiresAt: null, terminatedAt: at(5) })),
];

describe("context-encoding", () => {
  it("encodes ListContextsResponse exactly as toBinary does, with and without token and total", () => {
    for (const [nextPageToken, totalSize] of [["", 0], ["tok-1", 1001], ["", 3]] as const) {
      const message = create(ListContextsResponseSchema, { contexts: contexts.map(sharedContextOut), nextPageToken, totalSize });
      expect(encodeListContextsResponse(message)).toEqual(toBinary(ListContextsResponseSchema, message));
      // Twice: the second time from the kept encodings.
      expect(encodeListContextsResponse(message)).toEqual(toBinary(ListContextsResponseSchema, message));
    }
    const empty = create(ListContextsResponseSchema, {});
    expect(encodeListContextsResponse(empty)).toEqual(toBinary(ListContextsResponseSchema, empty));
  });

  it("answers a page object with one message, whose bytes the adapter's encoder keeps", () => {
    const page = { contexts, nextPageToken: "tok", totalSize: 1001 };
    const answer = listContextsOut(page);
    expect(listContextsOut(page)).toBe(answer);
    expect(answer).toEqual(create(ListContextsResponseSchema, { contexts: contexts.map(contextOut), nextPageToken: "tok", totalSize: 1001 }));
    const encode = encoderFor(ListContextsResponseSchema) as (m: typeof answer) => Uint8Array;
    expect(encode(answer)).toBe(encode(answer));
    expect(encode(answer)).toEqual(toBinary(ListContextsResponseSchema, answer));
    const next = { ...page, contexts: contexts.slice(1) };
    expect(listContextsOut(next)).not.toBe(answer);
    expect(encode(listContextsOut(next))).toEqual(toBinary(ListContextsResponseSchema, listContextsOut(next)));
  });

  it("encodes GetContextResponse exactly as toBinary does, FULL view (state, participants) included", () => {
    const full = makeContext({ name: "full" });
    const participants = [makeParticipant(full.contextId), makeParticipant(full.contextId, { agentId: "b", roles: ["admin"] })];
    for (const message of [
      create(GetContextResponseSchema, { context: sharedContextOut(contexts[1]!) }),
      create(GetContextResponseSchema, { context: sharedContextOut(full), participants: participants.map(participantOut) }),
      create(GetContextResponseSchema, {}),
    ]) {
      expect(encodeGetContextResponse(message)).toEqual(toBinary(GetContextResponseSchema, message));
    }
  });

  it("maps one version of a context once, and a new version (a revision, a kept-alive expiry) anew", () => {
    const c = contexts[0]!;
    expect(sharedContextOut({ ...c })).toBe(sharedContextOut({ ...c }));
    expect(sharedContextOut({ ...c })).toEqual(contextOut(c));
    expect(sharedContextOut({ ...c, revision: c.revision + 1, name: "renamed" }).name).toBe("renamed");
    const kept = sharedContextOut({ ...c, expiresAt: at(999_999) });
    expect(kept.expiresAt).toEqual(contextOut({ ...c, expiresAt: at(999_999) }).expiresAt);
  });

  it("encodes a Context exactly as toBinary does: every field set, unset, zero, empty or at its limits", () => {
    const full = contextOut(makeContext({ name: "with state", revision: 2 ** 40, participantCount: 2 ** 31 - 1 }));
    const messages = [
      ...contexts.map(contextOut),
      full,
      create(ContextSchema, {}),
      create(ContextSchema, { configuration: {}, accessControl: {}, metadata: {} }),
      create(ContextSchema, { metadata: { customData: {} }, createdAt: { seconds: 0n, nanos: 0 }, expiresAt: { seconds: -5n, nanos: 999_999_999 } }),
      create(ContextSchema, {
        configuration: { maxParticipants: 0, maxSessions: -1, timeoutMs: 0n, autoCleanup: false, cleanupDelayMs: 9_007_199_254_740_993n },
        accessControl: { owner: "ö", requiredCapabilities: ["", "x"], requiredRoles: ["r"] },
        metadata: { tags: ["", "t"], category: "c", priority: 3, customData: { a: null, b: [true, 1.5, "s", { c: [] }] } },
        revision: -1n,
        type: 99 as ContextType,
      }),
    ];
    for (const m of messages) expect(encodeContextMessage(m)).toEqual(toBinary(ContextSchema, m));
  });

  it("encodes the answers of CreateContext, UpdateContext and TransitionContext exactly as toBinary does", () => {
    const context = contextOut(makeContext({ name: "answer" }));
    for (const schema of [CreateContextResponseSchema, UpdateContextResponseSchema, TransitionContextResponseSchema] as const) {
      for (const message of [create(schema, { context }), create(schema, {})]) {
        expect(encodeContextAnswer(message)).toEqual(toBinary(schema, message));
      }
    }
  });
});
