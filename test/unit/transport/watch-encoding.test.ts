import { toBinary } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { WatchResponseSchema } from "../../../gen/mplp/context/v1/context_service_pb.js";
import type { WatchMessage } from "../../../src/service/watch-types.js";
import { encodeWatchResponse } from "../../../src/transport/watch-encoding.js";
import { watchCanceledOut, watchCreatedOut, watchStreamResponseOut } from "../../../src/transport/watch-mapper.js";
import { AppError } from "../../../src/domain/app-error.js";
import { event, makeContext, stateEvent, withoutState } from "../../support/context-fixtures.js";
import { makeParticipant } from "../../support/participant-fixtures.js";

const context = withoutState(makeContext({ contextId: "11111111-1111-4111-8111-111111111111" }));
const id = context.contextId;
const revision: WatchMessage = { kind: "events", revision: 7, events: [event(id, 7, 1, context), stateEvent(id, 7, 2)] };
const messages: WatchMessage[] = [
  revision,
  { kind: "events", revision: 8, events: [] },
  // Events whose encoding is longer than a one-byte (and a two-byte) length.
  { kind: "events", revision: 10, events: Array.from({ length: 300 }, (_, i) => event(id, 10, i + 1, context)) },
  { kind: "progress", revision: 9 },
  { kind: "snapshot", context: { ...context, sharedState: makeContext().sharedState }, participants: [makeParticipant(id)], revision: 6 },
];
// Each varint length a watch id can take (one byte, two, the largest safe integer, past it, negative).
const ids = [0n, 1n, 127n, 128n, 300n, BigInt(Number.MAX_SAFE_INTEGER), 2n ** 53n, 2n ** 62n, -1n];

describe("encodeWatchResponse", () => {
  it("equals toBinary byte for byte, for every kind of response and watch_id", () => {
    for (const watchId of ids) {
      const responses = [
        ...messages.map((m) => watchStreamResponseOut(watchId, m)),
        watchCreatedOut(watchId),
        watchCanceledOut(watchId, { reason: "CANCELLED", message: "cancelled by the client" }),
        watchCanceledOut(watchId, { error: new AppError("SLOW_CONSUMER", "behind", { metadata: { last_revision: "5" } }) }),
      ];
      for (const response of responses) expect(encodeWatchResponse(response), `${response.response.case} of ${watchId}`).toEqual(toBinary(WatchResponseSchema, response));
    }
  });

  it("shares one events message among the watches of a revision, and still encodes each watch's id", () => {
    const a = watchStreamResponseOut(1n, revision);
    const b = watchStreamResponseOut(2n, revision);
    expect(a.response.value).toBe(b.response.value);
    expect(encodeWatchResponse(a)).not.toEqual(encodeWatchResponse(b));
    expect(encodeWatchResponse(b)).toEqual(toBinary(WatchResponseSchema, b));
  });

  it("maps an unexpected error to INTERNAL with nothing of its text", () => {
    const canceled = watchCanceledOut(3n, { error: new Error("connection string postgres://secret") }).response;
    expect(canceled.case === "canceled" && [canceled.value.code, canceled.value.reason, canceled.value.message]).toEqual([13, "INTERNAL_ERROR", "internal error"]);
  });
});
