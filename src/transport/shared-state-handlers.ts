/**
 * UpdateSharedState and GetSharedState, the ContextService methods of shared state: decode the
 * request into domain input, call the use case, encode the versioned state. Merged into the
 * ContextService handlers by the composition root.
 */
import type { GetSharedStateResponse, UpdateSharedStateResponse } from "../../gen/mplp/context/v1/context_service_pb.js";
import type { SharedStateService } from "../service/shared-state-service.js";
import { callerOf, type ContextServiceHandlers } from "./context-handlers.js";
import { int64In, int64Out } from "./proto-values.js";
import { sharedStateMessage } from "./shared-state-encoding.js";
import { sharedStateIn, stateChangeIn } from "./shared-state-mapper.js";

/** The use cases the handlers call; the SharedStateService class, or a fake in tests. */
export type SharedStateUseCases = Pick<SharedStateService, "update" | "get">;

/** The shared-state handlers of mplp.context.v1.ContextService. */
export function sharedStateHandlers(
  service: SharedStateUseCases,
): Required<Pick<ContextServiceHandlers, "updateSharedState" | "getSharedState">> {
  return {
    async updateSharedState(request, ctx) {
      const result = await service.update(callerOf(ctx), {
        contextId: request.contextId,
        changes: request.changes.map(stateChangeIn),
        ...(request.replace === undefined ? {} : { replace: sharedStateIn(request.replace) }),
        updateMask: request.updateMask?.paths ?? [],
        expectedRevision: int64In(request.expectedRevision),
        requestId: request.requestId,
      });
      // A literal around the state's shared message (encoded once, for this answer and the reads after).
      const response: UpdateSharedStateResponse = {
        $typeName: "mplp.context.v1.UpdateSharedStateResponse",
        revision: int64Out(result.revision),
        sharedState: sharedStateMessage(result.sharedState),
        checksum: result.checksum,
      };
      return response;
    },

    async getSharedState(request, ctx) {
      const result = await service.get(callerOf(ctx), { contextId: request.contextId, revision: int64In(request.revision) });
      // A literal, not create(): its reflective walk was a few % of a cached read's CPU.
      const response: GetSharedStateResponse = {
        $typeName: "mplp.context.v1.GetSharedStateResponse",
        revision: int64Out(result.revision),
        sharedState: sharedStateMessage(result.sharedState),
        checksum: result.checksum,
      };
      return response;
    },
  };
}
