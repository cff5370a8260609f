/**
 * Participant, proto ⇄ domain. Inbound, only the settable fields are read (ids, status,
 * permissions and timestamps are output-only) and enums become unchecked strings, so domain
 * validation applies defaults and names bad fields. Outbound, every wire field is filled;
 * `permissions` are derived from the roles here rather than stored, so they can never disagree.
 */
import { create } from "@bufbuild/protobuf";
import {
  ParticipantSchema,
  ParticipantStatusSchema,
  ParticipantTypeSchema,
  PermissionSchema,
  type Participant as ProtoParticipant,
} from "../../gen/mplp/context/v1/participant_pb.js";
import type { ParticipantFilter as ProtoParticipantFilter } from "../../gen/mplp/context/v1/participant_service_pb.js";
import type { Participant } from "../domain/participant.js";
import type { ParticipantFilterInput, ParticipantInput } from "../domain/participant-validation.js";
import { permissionsOfRoles } from "../domain/permissions.js";
import { enumIn, enumOut, timestampOut } from "./proto-values.js";

/**
 * The settable fields of a proto Participant (AddParticipant, an item of BatchAddParticipants, or
 * UpdateParticipant's patch). An absent message reads as "nothing set", which validation then
 * reports field by field. Strings pass through as sent: "" is proto3's unset, and the domain
 * treats it as such (an empty agent_id is a VALIDATION_ERROR naming the field).
 */
export function participantIn(participant: ProtoParticipant | undefined): ParticipantInput {
  if (participant === undefined) return {};
  return {
    agentId: participant.agentId,
    participantType: enumIn(ParticipantTypeSchema, participant.participantType),
    displayName: participant.displayName,
    roles: [...participant.roles],
    capabilities: [...participant.capabilities],
    metadata: participant.metadata,
  };
}

/** ListParticipants' filter: unset enums and empty strings match everything, so they stay undefined. */
export function participantFilterIn(filter: ProtoParticipantFilter | undefined): ParticipantFilterInput {
  if (filter === undefined) return {};
  return {
    status: enumIn(ParticipantStatusSchema, filter.status),
    role: filter.role === "" ? undefined : filter.role,
    capability: filter.capability === "" ? undefined : filter.capability,
    participantType: enumIn(ParticipantTypeSchema, filter.participantType),
  };
}

/**
 * A domain Participant as the proto message. `inactiveSince` stays behind: it is the sweeper's
 * bookkeeping, and clients see presence through `status` and `lease_expires_at`.
 */
export function participantOut(participant: Participant): ProtoParticipant {
  return create(ParticipantSchema, {
    participantId: participant.participantId,
    contextId: participant.contextId,
    agentId: participant.agentId,
    participantType: enumOut(ParticipantTypeSchema, participant.participantType),
    displayName: participant.displayName,
    status: enumOut(ParticipantStatusSchema, participant.status),
    roles: [...participant.roles],
    capabilities: [...participant.capabilities],
    permissions: permissionsOfRoles(participant.roles).map((permission) => enumOut(PermissionSchema, permission)),
    metadata: participant.metadata,
    joinedAt: timestampOut(participant.joinedAt),
    lastActivityAt: timestampOut(participant.lastActivityAt),
    leaseExpiresAt: timestampOut(participant.leaseExpiresAt),
  });
}
