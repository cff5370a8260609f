import { create, toBinary } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { ParticipantSchema, type Permission } from "../../../gen/mplp/context/v1/participant_pb.js";
import {
  AddParticipantResponseSchema,
  BatchAddParticipantsResponseSchema,
  GetParticipantResponseSchema,
  ListParticipantsResponseSchema,
  UpdateParticipantResponseSchema,
} from "../../../gen/mplp/context/v1/participant_service_pb.js";
import {
  encodeBatchAddParticipantsResponse,
  encodeListParticipantsResponse,
  encodeParticipantAnswer,
  encodeParticipantMessage,
  listParticipantsOut,
  sharedParticipantOut,
} from "../../../src/transport/participant-encoding.js";
import { encoderFor } from "../../../src/transport/response-encoders.js";
import { participantOut } from "../../../src/transport/participant-mapper.js";
import { makeParticipant } from "../../support/participant-fixtures.js";

const contextId = "7d0e2a8e-1d2f-4c1e-9a51-0c7e6b1b0a11";
const participants = [
  participantOut(makeParticipant(contextId)),
  participantOut(makeParticipant(contextId, { agentId: "ünï", roles: ["admin", "observer"], capabilities: ["", "plan"], metadata: { a: [1, { b: null }] } })),
  participantOut(makeParticipant(contextId, { agentId: "bare", roles: [], metadata: {} })),
  create(ParticipantSchema, {}),
  create(ParticipantSchema, { permissions: [0, 1, 200 as Permission], metadata: {}, joinedAt: { seconds: -1n, nanos: 5 } }),
];

describe("participant-encoding", () => {
  it("encodes a Participant exactly as toBinary does: fields set, unset, empty, packed permissions", () => {
    for (const p of participants) expect(encodeParticipantMessage(p)).toEqual(toBinary(ParticipantSchema, p));
  });

  it("encodes the participant answers exactly as toBinary does", () => {
    for (const schema of [AddParticipantResponseSchema, GetParticipantResponseSchema, UpdateParticipantResponseSchema] as const) {
      for (const message of [create(schema, { participant: participants[1]! }), create(schema, {})]) {
        expect(encodeParticipantAnswer(message)).toEqual(toBinary(schema, message));
      }
    }
    for (const message of [create(BatchAddParticipantsResponseSchema, { participants }), create(BatchAddParticipantsResponseSchema, {})]) {
      expect(encodeBatchAddParticipantsResponse(message)).toEqual(toBinary(BatchAddParticipantsResponseSchema, message));
    }
    for (const [nextPageToken, totalSize] of [["", 0], ["tok", 1001]] as const) {
      const message = create(ListParticipantsResponseSchema, { participants, nextPageToken, totalSize });
      expect(encodeListParticipantsResponse(message)).toEqual(toBinary(ListParticipantsResponseSchema, message));
    }
  });

  it("maps a read's participant once per object, and its kept encoding still equals toBinary", () => {
    const member = makeParticipant(contextId, { agentId: "kept", metadata: { k: "v" } });
    expect(sharedParticipantOut(member)).toBe(sharedParticipantOut(member));
    expect(sharedParticipantOut(member)).toEqual(participantOut(member));
    const changed = { ...member, displayName: "renamed" };
    expect(sharedParticipantOut(changed).displayName).toBe("renamed");
    const message = create(ListParticipantsResponseSchema, { participants: [sharedParticipantOut(member), sharedParticipantOut(changed)], totalSize: 2 });
    // Twice: the second time from the kept encodings.
    expect(encodeListParticipantsResponse(message)).toEqual(toBinary(ListParticipantsResponseSchema, message));
    expect(encodeListParticipantsResponse(message)).toEqual(toBinary(ListParticipantsResponseSchema, message));
  });

  it("answers a page object with one message, whose bytes the adapter's encoder keeps", () => {
    const page = { participants: [makeParticipant(contextId), makeParticipant(contextId, { agentId: "b" })], nextPageToken: "tok", totalSize: 7 };
    const answer = listParticipantsOut(page);
    expect(listParticipantsOut(page)).toBe(answer);
    expect(answer).toEqual(create(ListParticipantsResponseSchema, { participants: page.participants.map(participantOut), nextPageToken: "tok", totalSize: 7 }));
    const encode = encoderFor(ListParticipantsResponseSchema) as (m: typeof answer) => Uint8Array;
    expect(encode(answer)).toBe(encode(answer));
    expect(encode(answer)).toEqual(toBinary(ListParticipantsResponseSchema, answer));
    // Another page (a revision since, say) is another answer.
    const next = { ...page, totalSize: 8 };
    expect(listParticipantsOut(next)).not.toBe(answer);
    expect(encode(listParticipantsOut(next))).toEqual(toBinary(ListParticipantsResponseSchema, listParticipantsOut(next)));
  });
});
