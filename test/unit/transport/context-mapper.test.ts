import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import {
  ContextSchema,
  ContextStatus,
  ContextType,
  LifecycleStage,
  PersistenceLevel,
  Visibility,
} from "../../../gen/mplp/context/v1/context_pb.js";
import { ContextFilterSchema, CreateContextRequestSchema } from "../../../gen/mplp/context/v1/context_service_pb.js";
import { ContextEventType } from "../../../gen/mplp/context/v1/event_pb.js";
import { Priority } from "../../../gen/mplp/context/v1/priority_pb.js";
import { GoalStatus, ResourceStatus, SharedStateSchema } from "../../../gen/mplp/context/v1/shared_state_pb.js";
import { AppError } from "../../../src/domain/app-error.js";
import { validateCreate } from "../../../src/domain/context-validation.js";
import type { Context } from "../../../src/domain/context.js";
import type { ContextEvent } from "../../../src/domain/event.js";
import type { SharedState } from "../../../src/domain/shared-state.js";
import { foldStatistics } from "../../../src/domain/statistics.js";
import {
  contextFilterIn,
  contextOut,
  contextSpecIn,
  createContextIn,
  statisticsOut,
} from "../../../src/transport/context-mapper.js";
import { eventOut, eventTypeIn } from "../../../src/transport/event-mapper.js";
import { sharedStateIn, sharedStateOut } from "../../../src/transport/shared-state-mapper.js";

const state: SharedState = {
  variables: { plan: { step: 2, done: false, tags: ["a", null] } },
  resources: { cpu: { type: "compute", amount: 4.5, unit: "cores", status: "ALLOCATED" } },
  dependencies: [{ id: "d1", type: null, name: "db", version: "15", status: "PENDING" }],
  goals: [
    {
      id: "g1",
      name: "ship",
      description: "ship it",
      priority: "HIGH",
      status: null,
      successCriteria: [{ metric: "latency", operator: "less_than", value: { p99: 20 }, unit: "ms" }],
    },
  ],
};

/** `state` as a client sends it back: unset enums arrive as undefined, which the domain stores as null. */
const stateAsInput = {
  ...state,
  dependencies: [{ ...state.dependencies[0], type: undefined }],
  goals: [{ ...state.goals[0], status: undefined }],
};

function sampleContext(overrides: Partial<Context> = {}): Context {
  return {
    contextId: "4f1c2b7e-9a7d-4c1e-8f00-0a1b2c3d4e5f",
    name: "research",
    description: "multi\nline",
    type: "PIPELINE",
    status: "PAUSED",
    lifecycleStage: "MONITORING",
    configuration: {
      maxParticipants: 12,
      maxSessions: 3,
      timeoutMs: 60_000,
      persistenceLevel: "SESSION",
      isolationLevel: "STRICT",
      autoCleanup: false,
      cleanupDelayMs: 1_000,
    },
    accessControl: {
      owner: "alice",
      visibility: "PUBLIC",
      joinPolicy: "OPEN",
      defaultRole: "viewer",
      requiredCapabilities: ["search"],
      requiredRoles: ["analyst"],
    },
    metadata: { tags: ["t1", "t2"], category: "science", priority: "CRITICAL", customData: { nested: { n: 1 } } },
    participantCount: 2,
    sessionCount: 1,
    revision: 42,
    createdAt: new Date("2024-01-01T00:00:00.123Z"),
    updatedAt: new Date("2024-01-02T00:00:00Z"),
    lastActivityAt: new Date("2024-01-03T00:00:00Z"),
    expiresAt: new Date("2024-01-03T00:01:00Z"),
    terminatedAt: null,
    compactRevision: 0,
    stateSnapshotRevision: 1,
    ...overrides,
  };
}

/** What a client would receive: the message through its binary encoding. */
function overTheWire(context: ReturnType<typeof contextOut>) {
  return fromBinary(ContextSchema, toBinary(ContextSchema, context));
}

describe("context-mapper", () => {
  describe(contextOut.name, () => {
    it("returns proto enums, int64 and timestamps when given a domain context", () => {
      const proto = overTheWire(contextOut(sampleContext()));
      expect(proto.type).toBe(ContextType.PIPELINE);
      expect(proto.status).toBe(ContextStatus.PAUSED);
      expect(proto.lifecycleStage).toBe(LifecycleStage.MONITORING);
      expect(proto.configuration?.persistenceLevel).toBe(PersistenceLevel.SESSION);
      expect(proto.configuration?.timeoutMs).toBe(60_000n);
      expect(proto.accessControl?.owner).toBe("alice");
      expect(proto.accessControl?.visibility).toBe(Visibility.PUBLIC);
      expect(proto.metadata?.priority).toBe(Priority.CRITICAL);
      expect(proto.metadata?.customData).toEqual({ nested: { n: 1 } });
      expect(proto.revision).toBe(42n);
      expect(proto.createdAt).toEqual(timestampFromDate(new Date("2024-01-01T00:00:00.123Z")));
      expect(proto.expiresAt).toEqual(timestampFromDate(new Date("2024-01-03T00:01:00Z")));
    });

    it("returns no shared_state when the context carries none", () => {
      expect(overTheWire(contextOut(sampleContext())).sharedState).toBeUndefined();
    });

    it("returns no expires_at when the context never expires", () => {
      expect(overTheWire(contextOut(sampleContext({ expiresAt: null }))).expiresAt).toBeUndefined();
    });

    it("returns the shared state when the context carries it", () => {
      const proto = overTheWire(contextOut(sampleContext({ sharedState: state })));
      expect(proto.sharedState?.resources["cpu"]?.status).toBe(ResourceStatus.ALLOCATED);
      expect(proto.sharedState?.goals[0]?.priority).toBe(Priority.HIGH);
      expect(proto.sharedState?.goals[0]?.status).toBe(GoalStatus.UNSPECIFIED);
    });
  });

  describe(contextSpecIn.name, () => {
    it("returns the same settable fields when a context goes out and comes back", () => {
      const context = sampleContext({ sharedState: state });
      const spec = contextSpecIn(overTheWire(contextOut(context)));
      const { name, description, type, configuration, metadata } = context;
      const { owner: _owner, ...accessControl } = context.accessControl;
      expect(spec).toEqual({ name, description, type, configuration, accessControl, metadata, sharedState: stateAsInput });
      // And the domain accepts it whole.
      const valid = validateCreate({ context: spec, requestId: "" });
      expect(valid.spec).toEqual({ name, description, type, configuration, accessControl, metadata });
      expect(valid.sharedState).toEqual(state);
    });

    it("returns undefined for every unset enum and message when the client set none", () => {
      const spec = contextSpecIn(create(ContextSchema, { name: "n", configuration: {} }));
      expect(spec.type).toBeUndefined();
      expect(spec.configuration).toEqual({
        maxParticipants: undefined,
        maxSessions: undefined,
        timeoutMs: undefined,
        persistenceLevel: undefined,
        isolationLevel: undefined,
        autoCleanup: undefined,
        cleanupDelayMs: undefined,
      });
      expect(spec.accessControl).toBeUndefined();
      expect(spec.metadata).toBeUndefined();
      expect(spec.sharedState).toBeUndefined();
    });

    it("returns a value the domain rejects naming the field when an enum number is unknown", () => {
      const spec = contextSpecIn(create(ContextSchema, { name: "n", type: 99 as ContextType }));
      expect(spec.type).toBe("UNKNOWN(99)");
      const error = (() => {
        try {
          validateCreate({ context: spec, requestId: "" });
        } catch (e) {
          return e;
        }
        throw new Error("validation passed");
      })();
      expect(error).toBeInstanceOf(AppError);
      expect((error as AppError).violations.map((v) => v.field)).toEqual(["context.type"]);
    });

    it("returns an empty spec when the request has no context", () => {
      expect(createContextIn(create(CreateContextRequestSchema, { requestId: "r1" }))).toEqual({ context: {}, requestId: "r1" });
    });
  });

  describe(contextFilterIn.name, () => {
    it("returns undefined for unset enums and empty strings when the filter matches everything", () => {
      expect(contextFilterIn(create(ContextFilterSchema))).toEqual({
        type: undefined,
        status: undefined,
        lifecycleStage: undefined,
        owner: undefined,
        namePrefix: undefined,
        tag: undefined,
      });
    });

    it("returns domain literals when the filter sets them", () => {
      const filter = contextFilterIn(
        create(ContextFilterSchema, { type: ContextType.BROADCAST, status: ContextStatus.ACTIVE, tag: "t", owner: "bob" }),
      );
      expect(filter).toMatchObject({ type: "BROADCAST", status: "ACTIVE", tag: "t", owner: "bob" });
    });
  });

  describe(statisticsOut.name, () => {
    it("returns every status, stage and type with zeros when counts are sparse", () => {
      const computedAt = new Date("2024-05-01T00:00:00Z");
      const stats = foldStatistics(
        [{ status: "ACTIVE", lifecycleStage: "PLANNING", type: "PIPELINE", contexts: 3, participants: 6, maxParticipants: 4 }],
        computedAt,
      );
      const proto = statisticsOut(stats);
      expect(proto.totalContexts).toBe(3n);
      expect(proto.countsByStatus.map((c) => [c.status, c.count])).toEqual([
        [ContextStatus.ACTIVE, 3n],
        [ContextStatus.PAUSED, 0n],
        [ContextStatus.COMPLETED, 0n],
        [ContextStatus.TERMINATED, 0n],
      ]);
      expect(proto.countsByStage).toHaveLength(4);
      expect(proto.countsByType).toHaveLength(7);
      expect(proto.countsByType.find((c) => c.type === ContextType.PIPELINE)?.count).toBe(3n);
      expect(proto.totalParticipants).toBe(6n);
      expect(proto.maxParticipants).toBe(4);
      expect(proto.computedAt).toEqual(timestampFromDate(computedAt));
    });
  });
});

describe("shared-state-mapper", () => {
  describe(sharedStateIn.name, () => {
    it("returns the same state when it goes out and comes back", () => {
      const wire = fromBinary(SharedStateSchema, toBinary(SharedStateSchema, sharedStateOut(state)));
      const back = sharedStateIn(wire);
      expect(back).toEqual(stateAsInput);
    });

    it("returns null for a success criterion whose value is unset", () => {
      const proto = create(SharedStateSchema, { goals: [{ id: "g", successCriteria: [{ metric: "m" }] }] });
      expect(sharedStateIn(proto).goals?.[0]?.successCriteria[0]?.value).toBeNull();
    });

    it("returns UNKNOWN(n) when a status number is unknown", () => {
      const proto = create(SharedStateSchema, { resources: { r: { status: 7 as ResourceStatus } } });
      expect(sharedStateIn(proto).resources?.["r"]?.status).toBe("UNKNOWN(7)");
    });
  });
});

describe("event-mapper", () => {
  const event: ContextEvent = {
    contextId: "c",
    revision: 7,
    seq: 0,
    eventId: "e",
    type: "CONTEXT_STATUS_CHANGED",
    actor: "alice",
    occurredAt: new Date("2024-02-02T00:00:00Z"),
    reason: "done",
    payload: { kind: "context", context: sampleContext() },
  };

  describe(eventOut.name, () => {
    it("returns the type enum, the MPLP name and the context payload when given a context event", () => {
      const proto = eventOut(event);
      expect(proto.type).toBe(ContextEventType.CONTEXT_STATUS_CHANGED);
      expect(proto.name).toBe("context.status.changed");
      expect(proto.revision).toBe(7n);
      expect(proto.payload.case).toBe("context");
      expect(proto.payload.case === "context" && proto.payload.value.name).toBe("research");
    });
  });

  describe(eventTypeIn.name, () => {
    it("returns the domain type, undefined for UNSPECIFIED, UNKNOWN(n) for a new number", () => {
      expect(eventTypeIn(eventOut(event).type)).toBe("CONTEXT_STATUS_CHANGED");
      expect(eventTypeIn(ContextEventType.UNSPECIFIED)).toBeUndefined();
      expect(eventTypeIn(42 as ContextEventType)).toBe("UNKNOWN(42)");
    });
  });
});
