/**
 * ContextService's gRPC handlers: decode the request into domain input, call the use case with the
 * caller taken from the call context, encode the result. No rules live here — validation,
 * authorization and state machines are the service's and the domain's.
 */
import { create } from "@bufbuild/protobuf";
import {
  BatchCreateContextsResponseSchema,
  type ContextService as ContextServiceDesc,
  CreateContextResponseSchema,
  DeleteContextResponseSchema,
  type GetContextResponse,
  ListContextEventsResponseSchema,
  TransitionContextResponseSchema,
  UpdateContextResponseSchema,
  type TransitionContextRequest,
} from "../../gen/mplp/context/v1/context_service_pb.js";
import { ContextStatusSchema, ContextViewSchema, LifecycleStageSchema } from "../../gen/mplp/context/v1/context_pb.js";
import type { Caller } from "../service/caller.js";
import type { ContextService, TransitionInput } from "../service/context-service.js";
import type { CallContext } from "./call-context.js";
import { listContextsOut, sharedContextOut } from "./context-encoding.js";
import { contextFilterIn, contextOut, contextSpecIn, createContextIn, statisticsOut } from "./context-mapper.js";
import { eventOut } from "./event-mapper.js";
import type { MethodsOf, ServiceHandlers } from "./grpc-adapter.js";
import { sharedParticipantOut } from "./participant-encoding.js";
import { enumIn, int64In } from "./proto-values.js";

/**
 * Handlers for mplp.context.v1.ContextService. Partial: contextHandlers() covers the context and
 * event methods; UpdateSharedState and GetSharedState come from shared-state-handlers.ts and
 * WatchContext from watch-handler.ts, merged in by the composition root (src/app.ts). A method a
 * server is given no handler for answers UNIMPLEMENTED.
 */
export type ContextServiceHandlers = Partial<ServiceHandlers<MethodsOf<typeof ContextServiceDesc>>>;

/** The use cases the handlers call; the ContextService class, or a fake in tests. */
export type ContextUseCases = Pick<
  ContextService,
  "create" | "batchCreate" | "get" | "update" | "delete" | "list" | "transition" | "statistics" | "listEvents"
>;

/** The caller a use case sees: the call's principal and deadline. */
export function callerOf(ctx: CallContext): Caller {
  return ctx.deadline === undefined ? { principal: ctx.principal } : { principal: ctx.principal, deadline: ctx.deadline };
}

function transitionTargetIn(target: TransitionContextRequest["target"]): TransitionInput {
  switch (target.case) {
    case "status":
      return { kind: "status", status: enumIn(ContextStatusSchema, target.value) };
    case "lifecycleStage":
      return { kind: "stage", lifecycleStage: enumIn(LifecycleStageSchema, target.value) };
    case undefined:
      return undefined;
  }
}

/** Binds the ContextService handlers to the use cases. */
export function contextHandlers(service: ContextUseCases): ContextServiceHandlers {
  return {
    async createContext(request, ctx) {
      const context = await service.create(callerOf(ctx), createContextIn(request));
      return create(CreateContextResponseSchema, { context: contextOut(context) });
    },

    async batchCreateContexts(request, ctx) {
      const contexts = await service.batchCreate(callerOf(ctx), request.requests.map(createContextIn));
      return create(BatchCreateContextsResponseSchema, { contexts: contexts.map(contextOut) });
    },

    async getContext(request, ctx) {
      const { context, participants } = await service.get(callerOf(ctx), request.contextId, enumIn(ContextViewSchema, request.view));
      // The use case lists participants only for the FULL view; BASIC gets an empty list.
      // A literal, not create(): its reflective walk was a few % of a cached read's CPU.
      const response: GetContextResponse = {
        $typeName: "mplp.context.v1.GetContextResponse",
        context: sharedContextOut(context),
        participants: participants.map(sharedParticipantOut),
      };
      return response;
    },

    async updateContext(request, ctx) {
      const { sharedState: _ignored, ...patch } = contextSpecIn(request.context);
      const context = await service.update(callerOf(ctx), {
        contextId: request.context?.contextId ?? "",
        patch,
        updateMask: request.updateMask?.paths ?? [],
        expectedRevision: int64In(request.expectedRevision),
      });
      return create(UpdateContextResponseSchema, { context: contextOut(context) });
    },

    async deleteContext(request, ctx) {
      await service.delete(callerOf(ctx), {
        contextId: request.contextId,
        expectedRevision: int64In(request.expectedRevision),
        force: request.force,
      });
      return create(DeleteContextResponseSchema);
    },

    async listContexts(request, ctx) {
      const page = await service.list(callerOf(ctx), {
        pageSize: request.pageSize,
        pageToken: request.pageToken,
        filter: contextFilterIn(request.filter),
      });
      return listContextsOut(page);
    },

    async transitionContext(request, ctx) {
      const context = await service.transition(callerOf(ctx), {
        contextId: request.contextId,
        target: transitionTargetIn(request.target),
        expectedRevision: int64In(request.expectedRevision),
        reason: request.reason,
      });
      return create(TransitionContextResponseSchema, { context: contextOut(context) });
    },

    async getContextStatistics(_request, ctx) {
      return statisticsOut(await service.statistics(callerOf(ctx)));
    },

    async listContextEvents(request, ctx) {
      const page = await service.listEvents(callerOf(ctx), {
        contextId: request.contextId,
        startRevision: int64In(request.startRevision),
        pageSize: request.pageSize,
        pageToken: request.pageToken,
      });
      return create(ListContextEventsResponseSchema, {
        events: page.events.map(eventOut),
        nextPageToken: page.nextPageToken,
      });
    },
  };
}
