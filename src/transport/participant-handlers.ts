/**
 * ParticipantService's gRPC handlers: decode the request into domain input, call the use case with
 * the caller taken from the call context, encode the result. No rules live here — validation,
 * authorization, capacity and presence are the service's and the domain's.
 */
import { create } from "@bufbuild/protobuf";
import { ParticipantStatusSchema } from "../../gen/mplp/context/v1/participant_pb.js";
import {
  AddParticipantResponseSchema,
  BatchAddParticipantsResponseSchema,
  GetParticipantResponseSchema,
  HeartbeatResponseSchema,
  KeepAliveResponseSchema,
  type ParticipantService as ParticipantServiceDesc,
  RemoveParticipantResponseSchema,
  UpdateParticipantResponseSchema,
} from "../../gen/mplp/context/v1/participant_service_pb.js";
import type { ParticipantService } from "../service/participant-service.js";
import { callerOf } from "./context-handlers.js";
import type { MethodsOf, ServiceHandlers } from "./grpc-adapter.js";
import { listParticipantsOut, sharedParticipantOut } from "./participant-encoding.js";
import { participantFilterIn, participantIn, participantOut } from "./participant-mapper.js";
import { enumOut, int64In, timestampOut } from "./proto-values.js";

/** Handlers for mplp.context.v1.ParticipantService; a method without one answers UNIMPLEMENTED. */
export type ParticipantServiceHandlers = Partial<ServiceHandlers<MethodsOf<typeof ParticipantServiceDesc>>>;

/** The use cases the handlers call; the ParticipantService class, or a fake in tests. */
export type ParticipantUseCases = Pick<ParticipantService, "add" | "batchAdd" | "get" | "update" | "remove" | "list" | "heartbeat">;

/** Binds the ParticipantService handlers to the use cases. */
export function participantHandlers(service: ParticipantUseCases): ParticipantServiceHandlers {
  return {
    async addParticipant(request, ctx) {
      const participant = await service.add(callerOf(ctx), {
        contextId: request.contextId,
        participant: participantIn(request.participant),
        requestId: request.requestId,
      });
      return create(AddParticipantResponseSchema, { participant: participantOut(participant) });
    },

    async batchAddParticipants(request, ctx) {
      const participants = await service.batchAdd(callerOf(ctx), {
        contextId: request.contextId,
        participants: request.participants.map(participantIn),
        requestId: request.requestId,
      });
      return create(BatchAddParticipantsResponseSchema, { participants: participants.map(participantOut) });
    },

    async getParticipant(request, ctx) {
      const participant = await service.get(callerOf(ctx), request.contextId, request.participantId);
      return create(GetParticipantResponseSchema, { participant: sharedParticipantOut(participant) });
    },

    async updateParticipant(request, ctx) {
      // The request names its target inside `participant`, next to the new values (AIP-134 style).
      const participant = await service.update(callerOf(ctx), {
        contextId: request.participant?.contextId ?? "",
        participantId: request.participant?.participantId ?? "",
        patch: participantIn(request.participant),
        updateMask: request.updateMask?.paths ?? [],
        expectedRevision: int64In(request.expectedRevision),
      });
      return create(UpdateParticipantResponseSchema, { participant: participantOut(participant) });
    },

    async removeParticipant(request, ctx) {
      await service.remove(callerOf(ctx), {
        contextId: request.contextId,
        participantId: request.participantId,
        reason: request.reason,
      });
      return create(RemoveParticipantResponseSchema);
    },

    async listParticipants(request, ctx) {
      const page = await service.list(callerOf(ctx), {
        contextId: request.contextId,
        pageSize: request.pageSize,
        pageToken: request.pageToken,
        filter: participantFilterIn(request.filter),
      });
      return listParticipantsOut(page);
    },

    async heartbeat(request, ctx) {
      const participant = await service.heartbeat(callerOf(ctx), { contextId: request.contextId, participantId: request.participantId });
      return create(HeartbeatResponseSchema, {
        status: enumOut(ParticipantStatusSchema, participant.status),
        leaseExpiresAt: timestampOut(participant.leaseExpiresAt),
      });
    },

    /**
     * One heartbeat per request, answered in order. A failing heartbeat ends the stream with its
     * status (the adapter maps the thrown error); the client half-closing ends it OK. Requests are
     * handled one at a time, so a client cannot pile up renewals faster than they are answered.
     */
    async keepAlive(requests, ctx, send) {
      for await (const request of requests) {
        // "The stream ending stops renewal": once the client cancelled or the deadline passed, a
        // request already buffered must not renew the lease anymore.
        ctx.signal.throwIfAborted();
        const participant = await service.heartbeat(callerOf(ctx), { contextId: request.contextId, participantId: request.participantId });
        await send(
          create(KeepAliveResponseSchema, {
            participantId: participant.participantId,
            status: enumOut(ParticipantStatusSchema, participant.status),
            leaseExpiresAt: timestampOut(participant.leaseExpiresAt),
          }),
        );
      }
    },
  };
}
