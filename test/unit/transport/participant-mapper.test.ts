import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { ContextEventType } from "../../../gen/mplp/context/v1/event_pb.js";
import {
  ParticipantSchema,
  ParticipantStatus,
  ParticipantType,
  Permission,
} from "../../../gen/mplp/context/v1/participant_pb.js";
import { ParticipantFilterSchema } from "../../../gen/mplp/context/v1/participant_service_pb.js";
import type { ContextEvent } from "../../../src/domain/event.js";
import type { Participant } from "../../../src/domain/participant.js";
import { validateAdd } from "../../../src/domain/participant-validation.js";
import { eventOut } from "../../../src/transport/event-mapper.js";
import { participantFilterIn, participantIn, participantOut } from "../../../src/transport/participant-mapper.js";

function sampleParticipant(overrides: Partial<Participant> = {}): Participant {
  return {
    participantId: "9b2f3c4d-1e2f-4a5b-8c6d-7e8f9a0b1c2d",
    contextId: "4f1c2b7e-9a7d-4c1e-8f00-0a1b2c3d4e5f",
    agentId: "agent-7",
    participantType: "SERVICE",
    displayName: "Planner",
    status: "INACTIVE",
    roles: ["contributor", "analyst"],
    capabilities: ["search", "plan"],
    metadata: { model: "x", limits: { tokens: 4096, tools: ["a", null] } },
    joinedAt: new Date("2024-01-01T00:00:00.123Z"),
    lastActivityAt: new Date("2024-01-02T00:00:00Z"),
    leaseExpiresAt: new Date("2024-01-02T00:00:30Z"),
    inactiveSince: new Date("2024-01-02T00:00:30Z"),
    ...overrides,
  };
}

/** What a client would receive: the message through its binary encoding. */
function overTheWire(participant: ReturnType<typeof participantOut>) {
  return fromBinary(ParticipantSchema, toBinary(ParticipantSchema, participant));
}

describe("participant-mapper", () => {
  describe(participantOut.name, () => {
    it("returns every wire field with proto enums and timestamps when given a domain participant", () => {
      const proto = overTheWire(participantOut(sampleParticipant()));
      expect(proto).toMatchObject({
        participantId: "9b2f3c4d-1e2f-4a5b-8c6d-7e8f9a0b1c2d",
        contextId: "4f1c2b7e-9a7d-4c1e-8f00-0a1b2c3d4e5f",
        agentId: "agent-7",
        participantType: ParticipantType.SERVICE,
        displayName: "Planner",
        status: ParticipantStatus.INACTIVE,
        roles: ["contributor", "analyst"],
        capabilities: ["search", "plan"],
        metadata: { model: "x", limits: { tokens: 4096, tools: ["a", null] } },
      });
      expect(proto.joinedAt).toEqual(timestampFromDate(new Date("2024-01-01T00:00:00.123Z")));
      expect(proto.lastActivityAt).toEqual(timestampFromDate(new Date("2024-01-02T00:00:00Z")));
      expect(proto.leaseExpiresAt).toEqual(timestampFromDate(new Date("2024-01-02T00:00:30Z")));
    });

    it("returns no inactive_since: it is internal bookkeeping, not a wire field", () => {
      const proto = participantOut(sampleParticipant());
      expect(Object.keys(proto)).not.toContain("inactiveSince");
    });

    it.each([
      { roles: ["viewer"], permissions: [Permission.READ] },
      { roles: ["reviewer"], permissions: [Permission.READ] },
      { roles: ["contributor"], permissions: [Permission.READ, Permission.WRITE] },
      {
        roles: ["admin"],
        permissions: [Permission.READ, Permission.WRITE, Permission.MANAGE_PARTICIPANTS, Permission.DELETE, Permission.ADMIN],
      },
      { roles: ["astronaut"], permissions: [Permission.READ] },
      { roles: ["viewer", "contributor", "astronaut"], permissions: [Permission.READ, Permission.WRITE] },
    ])("returns permissions $permissions when the roles are $roles", ({ roles, permissions }) => {
      expect(overTheWire(participantOut(sampleParticipant({ roles }))).permissions).toEqual(permissions);
    });
  });

  describe(participantIn.name, () => {
    it("returns the settable fields as domain input when given a proto participant", () => {
      const proto = create(ParticipantSchema, {
        participantId: "ignored",
        contextId: "ignored",
        agentId: "agent-7",
        participantType: ParticipantType.HUMAN,
        displayName: "Ann",
        status: ParticipantStatus.ACTIVE,
        roles: ["viewer"],
        capabilities: ["chat"],
        permissions: [Permission.ADMIN],
        metadata: { k: [1, "two"] },
      });
      expect(participantIn(proto)).toEqual({
        agentId: "agent-7",
        participantType: "HUMAN",
        displayName: "Ann",
        roles: ["viewer"],
        capabilities: ["chat"],
        metadata: { k: [1, "two"] },
      });
    });

    it("returns an undefined type when UNSPECIFIED, so the domain applies its default", () => {
      const input = participantIn(create(ParticipantSchema, { agentId: "a" }));
      expect(input.participantType).toBeUndefined();
      expect(input.metadata).toBeUndefined();
      expect(validateAdd({ contextId: "4f1c2b7e-9a7d-4c1e-8f00-0a1b2c3d4e5f", participant: input, requestId: "" }).drafts[0]).toMatchObject({
        participantType: "AGENT",
        roles: [],
        metadata: {},
      });
    });

    it("returns UNKNOWN(n) when the type number is unknown", () => {
      expect(participantIn(create(ParticipantSchema, { participantType: 9 as ParticipantType })).participantType).toBe("UNKNOWN(9)");
    });

    it("returns an empty input when the message is absent", () => {
      expect(participantIn(undefined)).toEqual({});
    });

    it("round-trips a domain participant's settable fields through the wire", () => {
      const domain = sampleParticipant();
      const back = participantIn(overTheWire(participantOut(domain)));
      expect(back).toEqual({
        agentId: domain.agentId,
        participantType: domain.participantType,
        displayName: domain.displayName,
        roles: domain.roles,
        capabilities: domain.capabilities,
        metadata: domain.metadata,
      });
    });
  });

  describe(participantFilterIn.name, () => {
    it("returns domain literals when the filter sets fields", () => {
      const filter = create(ParticipantFilterSchema, {
        status: ParticipantStatus.ACTIVE,
        role: "admin",
        capability: "search",
        participantType: ParticipantType.AGENT,
      });
      expect(participantFilterIn(filter)).toEqual({ status: "ACTIVE", role: "admin", capability: "search", participantType: "AGENT" });
    });

    it("returns undefined for unset enums and empty strings, so they match everything", () => {
      expect(participantFilterIn(create(ParticipantFilterSchema))).toEqual({
        status: undefined,
        role: undefined,
        capability: undefined,
        participantType: undefined,
      });
      expect(participantFilterIn(undefined)).toEqual({});
    });

    it("returns UNKNOWN(n) when an enum number is unknown", () => {
      const filter = create(ParticipantFilterSchema, { status: 5 as ParticipantStatus, participantType: 8 as ParticipantType });
      expect(participantFilterIn(filter)).toMatchObject({ status: "UNKNOWN(5)", participantType: "UNKNOWN(8)" });
    });
  });
});

describe("event-mapper", () => {
  describe(eventOut.name, () => {
    it("returns the participant payload when given a participant event", () => {
      const event: ContextEvent = {
        contextId: "4f1c2b7e-9a7d-4c1e-8f00-0a1b2c3d4e5f",
        revision: 9,
        seq: 0,
        eventId: "e9",
        type: "PARTICIPANT_JOINED",
        actor: "alice",
        occurredAt: new Date("2024-02-02T00:00:00Z"),
        reason: "",
        payload: { kind: "participant", participant: sampleParticipant({ roles: ["admin"] }) },
      };
      const proto = eventOut(event);
      expect(proto).toMatchObject({ type: ContextEventType.PARTICIPANT_JOINED, name: "context.participant.joined", revision: 9n });
      expect(proto.payload.case).toBe("participant");
      const participant = proto.payload.case === "participant" ? proto.payload.value : undefined;
      expect(participant?.agentId).toBe("agent-7");
      expect(participant?.permissions).toHaveLength(5);
    });
  });
});
