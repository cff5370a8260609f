/**
 * Context, proto ⇄ domain. Inbound, enums become unchecked strings and unset fields undefined, so
 * domain validation applies defaults and names bad fields; outbound, domain values become proto
 * enums, int64 and Timestamps, and absent parts (shared state, expiry) stay unset.
 */
import { create } from "@bufbuild/protobuf";
import {
  AccessControlSchema,
  ContextConfigurationSchema,
  ContextMetadataSchema,
  ContextSchema,
  ContextStatusSchema,
  ContextTypeSchema,
  IsolationLevelSchema,
  JoinPolicySchema,
  LifecycleStageSchema,
  PersistenceLevelSchema,
  VisibilitySchema,
  type Context as ProtoContext,
} from "../../gen/mplp/context/v1/context_pb.js";
import {
  GetContextStatisticsResponseSchema,
  type ContextFilter as ProtoContextFilter,
  type CreateContextRequest,
  type GetContextStatisticsResponse,
} from "../../gen/mplp/context/v1/context_service_pb.js";
import { PrioritySchema } from "../../gen/mplp/context/v1/priority_pb.js";
import {
  CONTEXT_STATUSES,
  CONTEXT_TYPES,
  LIFECYCLE_STAGES,
  type Context,
} from "../domain/context.js";
import type { ContextFilterInput } from "../domain/context-filter.js";
import type { ContextSpecInput, CreateContextInput } from "../domain/context-validation.js";
import type { SharedStateInput } from "../domain/shared-state-validation.js";
import type { ContextStatistics } from "../domain/statistics.js";
import { enumIn, enumOut, int64Out, optionalInt64In, timestampOut } from "./proto-values.js";
import { sharedStateIn, sharedStateOut } from "./shared-state-mapper.js";

/** The settable fields of a proto Context (create, or UpdateContext's patch); output-only fields are ignored. */
export function contextSpecIn(context: ProtoContext | undefined): ContextSpecInput & { sharedState?: SharedStateInput } {
  if (context === undefined) return {};
  const { configuration: c, accessControl: a, metadata: m } = context;
  return {
    name: context.name,
    description: context.description,
    type: enumIn(ContextTypeSchema, context.type),
    configuration:
      c === undefined
        ? undefined
        : {
            maxParticipants: c.maxParticipants,
            maxSessions: c.maxSessions,
            timeoutMs: optionalInt64In(c.timeoutMs),
            persistenceLevel: enumIn(PersistenceLevelSchema, c.persistenceLevel),
            isolationLevel: enumIn(IsolationLevelSchema, c.isolationLevel),
            autoCleanup: c.autoCleanup,
            cleanupDelayMs: optionalInt64In(c.cleanupDelayMs),
          },
    accessControl:
      a === undefined
        ? undefined
        : {
            visibility: enumIn(VisibilitySchema, a.visibility),
            joinPolicy: enumIn(JoinPolicySchema, a.joinPolicy),
            // "" is proto3's unset string: the default role applies.
            defaultRole: a.defaultRole === "" ? undefined : a.defaultRole,
            requiredCapabilities: a.requiredCapabilities,
            requiredRoles: a.requiredRoles,
          },
    metadata:
      m === undefined
        ? undefined
        : {
            tags: m.tags,
            category: m.category,
            priority: enumIn(PrioritySchema, m.priority),
            customData: m.customData,
          },
    sharedState: context.sharedState === undefined ? undefined : sharedStateIn(context.sharedState),
  };
}

/** One CreateContext request (also an item of BatchCreateContexts) as the use case takes it. */
export function createContextIn(request: CreateContextRequest): CreateContextInput {
  return { context: contextSpecIn(request.context), requestId: request.requestId };
}

/** ListContexts' filter: unset enums and empty strings match everything, so they stay undefined. */
export function contextFilterIn(filter: ProtoContextFilter | undefined): ContextFilterInput {
  if (filter === undefined) return {};
  return {
    type: enumIn(ContextTypeSchema, filter.type),
    status: enumIn(ContextStatusSchema, filter.status),
    lifecycleStage: enumIn(LifecycleStageSchema, filter.lifecycleStage),
    owner: filter.owner === "" ? undefined : filter.owner,
    namePrefix: filter.namePrefix === "" ? undefined : filter.namePrefix,
    tag: filter.tag === "" ? undefined : filter.tag,
  };
}

/** A domain Context as the proto message; shared_state only when the context carries it, expires_at unset when it never expires. */
export function contextOut(context: Context): ProtoContext {
  const { configuration: c, accessControl: a, metadata: m } = context;
  return create(ContextSchema, {
    contextId: context.contextId,
    name: context.name,
    description: context.description,
    type: enumOut(ContextTypeSchema, context.type),
    status: enumOut(ContextStatusSchema, context.status),
    lifecycleStage: enumOut(LifecycleStageSchema, context.lifecycleStage),
    configuration: create(ContextConfigurationSchema, {
      maxParticipants: c.maxParticipants,
      maxSessions: c.maxSessions,
      timeoutMs: int64Out(c.timeoutMs),
      persistenceLevel: enumOut(PersistenceLevelSchema, c.persistenceLevel),
      isolationLevel: enumOut(IsolationLevelSchema, c.isolationLevel),
      autoCleanup: c.autoCleanup,
      cleanupDelayMs: int64Out(c.cleanupDelayMs),
    }),
    accessControl: create(AccessControlSchema, {
      owner: a.owner,
      visibility: enumOut(VisibilitySchema, a.visibility),
      joinPolicy: enumOut(JoinPolicySchema, a.joinPolicy),
      defaultRole: a.defaultRole,
      requiredCapabilities: [...a.requiredCapabilities],
      requiredRoles: [...a.requiredRoles],
    }),
    sharedState: context.sharedState === undefined ? undefined : sharedStateOut(context.sharedState),
    metadata: create(ContextMetadataSchema, {
      tags: [...m.tags],
      category: m.category,
      priority: enumOut(PrioritySchema, m.priority),
      customData: m.customData,
    }),
    participantCount: context.participantCount,
    sessionCount: context.sessionCount,
    revision: int64Out(context.revision),
    createdAt: timestampOut(context.createdAt),
    updatedAt: timestampOut(context.updatedAt),
    lastActivityAt: timestampOut(context.lastActivityAt),
    expiresAt: context.expiresAt === null ? undefined : timestampOut(context.expiresAt),
  });
}

/** GetContextStatistics' figures; every status, stage and type listed in enum order, zeros included. */
export function statisticsOut(statistics: ContextStatistics): GetContextStatisticsResponse {
  return create(GetContextStatisticsResponseSchema, {
    totalContexts: int64Out(statistics.totalContexts),
    countsByStatus: CONTEXT_STATUSES.map((status) => ({
      status: enumOut(ContextStatusSchema, status),
      count: int64Out(statistics.byStatus[status]),
    })),
    countsByStage: LIFECYCLE_STAGES.map((stage) => ({
      lifecycleStage: enumOut(LifecycleStageSchema, stage),
      count: int64Out(statistics.byStage[stage]),
    })),
    countsByType: CONTEXT_TYPES.map((type) => ({
      type: enumOut(ContextTypeSchema, type),
      count: int64Out(statistics.byType[type]),
    })),
    totalParticipants: int64Out(statistics.totalParticipants),
    avgParticipants: statistics.avgParticipants,
    maxParticipants: statistics.maxParticipants,
    computedAt: timestampOut(statistics.computedAt),
  });
}
