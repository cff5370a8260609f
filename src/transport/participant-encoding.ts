/**
 * The Participant message and the answers made of participants, encoded by hand: equal to
 * protobuf-es's toBinary byte for byte (test/unit/transport/participant-encoding.test.ts), without
 * its reflection, which was the larger part of a participant call's encoding cost; a read's
 * participants are mapped and encoded once per participant object (sharedParticipantOut).
 */
import {
  AddParticipantResponseSchema,
  BatchAddParticipantsResponseSchema,
  ListParticipantsResponseSchema,
  type AddParticipantResponse,
  type BatchAddParticipantsResponse,
  type ListParticipantsResponse,
} from "../../gen/mplp/context/v1/participant_service_pb.js";
import { ParticipantSchema, type Participant as ProtoParticipant } from "../../gen/mplp/context/v1/participant_pb.js";
import type { Participant } from "../domain/participant.js";
import type { ParticipantPage } from "../service/participant-service.js";
import { BinaryWriter, LD, structField, textField, textsField, timestampField, varintField, WireType } from "./message-writer.js";
import { oncePerObject } from "./once-per-object.js";
import { participantOut } from "./participant-mapper.js";

const P = ParticipantSchema.field;

/**
 * A read's participants are the read cache's objects, the same from one call to the next until
 * the participant changes (domain objects are never changed in place): each is mapped and encoded
 * once, not on every ListParticipants page or FULL GetContext that carries it.
 */
/** participantOut, the same message object for the same participant object. */
export const sharedParticipantOut: (participant: Participant) => ProtoParticipant = oncePerObject(participantOut);

const encodeParticipant = oncePerObject(encodeParticipantMessage);

/**
 * ListParticipants' answer, one message per page object: a kept first page is the same object
 * call after call (service/page-once.ts), so its answer is too, and response-encoders.ts keeps
 * that answer's bytes beside it.
 */
export const listParticipantsOut = oncePerObject(
  (page: ParticipantPage): ListParticipantsResponse => ({
    // A literal, not create(): its reflective walk was a few % of a cached page's CPU.
    $typeName: "mplp.context.v1.ListParticipantsResponse",
    participants: page.participants.map(sharedParticipantOut),
    nextPageToken: page.nextPageToken,
    totalSize: page.totalSize,
  }),
);

/** toBinary(ParticipantSchema, m), byte for byte. */
export function encodeParticipantMessage(m: ProtoParticipant): Uint8Array {
  const w = new BinaryWriter();
  textField(w, P.participantId.number, m.participantId);
  textField(w, P.contextId.number, m.contextId);
  textField(w, P.agentId.number, m.agentId);
  varintField(w, P.participantType.number, m.participantType);
  textField(w, P.displayName.number, m.displayName);
  varintField(w, P.status.number, m.status);
  textsField(w, P.roles.number, m.roles);
  textsField(w, P.capabilities.number, m.capabilities);
  // A repeated enum is packed in proto3.
  if (m.permissions.length > 0) {
    w.tag(P.permissions.number, LD).fork();
    for (const v of m.permissions) w.int32(v);
    w.join();
  }
  structField(w, P.metadata.number, m.metadata);
  timestampField(w, P.joinedAt.number, m.joinedAt);
  timestampField(w, P.lastActivityAt.number, m.lastActivityAt);
  timestampField(w, P.leaseExpiresAt.number, m.leaseExpiresAt);
  return w.finish();
}

/** A repeated Participant field of a read (each message's encoding kept for the next call). */
export function participantsField(w: BinaryWriter, field: number, participants: readonly ProtoParticipant[]): void {
  for (const p of participants) w.tag(field, LD).bytes(encodeParticipant(p));
}

/** toBinary of AddParticipant's, GetParticipant's and UpdateParticipant's answer: a participant as field 1. */
export function encodeParticipantAnswer(m: Pick<AddParticipantResponse, "participant">): Uint8Array {
  const w = new BinaryWriter();
  if (m.participant !== undefined) w.tag(AddParticipantResponseSchema.field.participant.number, LD).bytes(encodeParticipantMessage(m.participant));
  return w.finish();
}

/** toBinary(BatchAddParticipantsResponseSchema, m), byte for byte. */
export function encodeBatchAddParticipantsResponse(m: BatchAddParticipantsResponse): Uint8Array {
  const w = new BinaryWriter();
  // New participants, not sent again: not kept.
  for (const p of m.participants) w.tag(BatchAddParticipantsResponseSchema.field.participants.number, LD).bytes(encodeParticipantMessage(p));
  return w.finish();
}

const LIST = ListParticipantsResponseSchema.field;

/** toBinary(ListParticipantsResponseSchema, m), byte for byte. */
export function encodeListParticipantsResponse(m: ListParticipantsResponse): Uint8Array {
  const w = new BinaryWriter();
  participantsField(w, LIST.participants.number, m.participants);
  textField(w, LIST.nextPageToken.number, m.nextPageToken);
  if (m.totalSize !== 0) w.tag(LIST.totalSize.number, WireType.Varint).int32(m.totalSize);
  return w.finish();
}
