/**
 * Responses with an encoder of their own, faster than protobuf-es's reflective toBinary and equal
 * to it byte for byte (test/unit/transport/*-encoding.test.ts): the contexts of reads (sent many
 * times, each version encoded once) and of writes (context-encoding.ts), every answer made of
 * participants (participant-encoding.ts), GetSharedState's and UpdateSharedState's state
 * (shared-state-encoding.ts), and a Watch stream's events, one encoding per revision however many
 * of its watches carry it (watch-encoding.ts). The adapter's serializer asks here first.
 *
 * A list's answer is one message per page object (listContextsOut, listParticipantsOut): a kept
 * first page is answered with the same message call after call, so its bytes are kept beside it.
 * (grpc-js copies them into each call's frame; nothing writes into them.)
 */
import type { DescMessage } from "@bufbuild/protobuf";
import {
  CreateContextResponseSchema,
  GetContextResponseSchema,
  GetSharedStateResponseSchema,
  ListContextsResponseSchema,
  TransitionContextResponseSchema,
  UpdateContextResponseSchema,
  UpdateSharedStateResponseSchema,
  WatchResponseSchema,
} from "../../gen/mplp/context/v1/context_service_pb.js";
import { encodeContextAnswer, encodeGetContextResponse, encodeListContextsResponse } from "./context-encoding.js";
import { encodeWatchResponse } from "./watch-encoding.js";
import { encodeGetSharedStateResponse, encodeUpdateSharedStateResponse } from "./shared-state-encoding.js";
import {
  AddParticipantResponseSchema,
  BatchAddParticipantsResponseSchema,
  GetParticipantResponseSchema,
  ListParticipantsResponseSchema,
  UpdateParticipantResponseSchema,
} from "../../gen/mplp/context/v1/participant_service_pb.js";
import { oncePerObject } from "./once-per-object.js";
import { encodeBatchAddParticipantsResponse, encodeListParticipantsResponse, encodeParticipantAnswer } from "./participant-encoding.js";

const ENCODERS = new Map<DescMessage, (message: never) => Uint8Array>([
  [ListContextsResponseSchema, oncePerObject(encodeListContextsResponse)],
  [GetContextResponseSchema, encodeGetContextResponse],
  [CreateContextResponseSchema, encodeContextAnswer],
  [UpdateContextResponseSchema, encodeContextAnswer],
  [TransitionContextResponseSchema, encodeContextAnswer],
  [GetSharedStateResponseSchema, encodeGetSharedStateResponse],
  [UpdateSharedStateResponseSchema, encodeUpdateSharedStateResponse],
  [AddParticipantResponseSchema, encodeParticipantAnswer],
  [GetParticipantResponseSchema, encodeParticipantAnswer],
  [UpdateParticipantResponseSchema, encodeParticipantAnswer],
  [BatchAddParticipantsResponseSchema, encodeBatchAddParticipantsResponse],
  [ListParticipantsResponseSchema, oncePerObject(encodeListParticipantsResponse)],
  [WatchResponseSchema, encodeWatchResponse],
]);

/** The response encoder of `schema`, when it has one. */
export function encoderFor<D extends DescMessage>(schema: D): ((message: never) => Uint8Array) | undefined {
  return ENCODERS.get(schema);
}
