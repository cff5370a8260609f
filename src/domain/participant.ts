/** The Participant resource: an agent's membership of a context, with roles and a presence lease. */
import type { JsonObject } from "./json.js";

export const PARTICIPANT_TYPES = ["AGENT", "HUMAN", "SERVICE", "SYSTEM"] as const;
export type ParticipantType = (typeof PARTICIPANT_TYPES)[number];

export const PARTICIPANT_STATUSES = ["ACTIVE", "INACTIVE"] as const;
export type ParticipantStatus = (typeof PARTICIPANT_STATUSES)[number];

export interface Participant {
  readonly participantId: string;
  readonly contextId: string;
  /** The principal this membership belongs to; one per context. */
  readonly agentId: string;
  readonly participantType: ParticipantType;
  readonly displayName: string;
  /** ACTIVE while the lease is current; INACTIVE once it lapsed (the sweeper decides). */
  readonly status: ParticipantStatus;
  readonly roles: readonly string[];
  readonly capabilities: readonly string[];
  readonly metadata: JsonObject;
  readonly joinedAt: Date;
  readonly lastActivityAt: Date;
  readonly leaseExpiresAt: Date;
  /** When the lease lapsed (= the lease_expires_at it lapsed at); null while ACTIVE. */
  readonly inactiveSince: Date | null;
}

/** ListParticipants' filter; an absent field matches everything. */
export interface ParticipantFilter {
  readonly status?: ParticipantStatus;
  readonly role?: string;
  readonly capability?: string;
  readonly participantType?: ParticipantType;
}

/** Presence timing, from the configuration. */
export interface PresencePolicy {
  /** A lease lasts this long after each renewal. */
  readonly ttlMs: number;
  /** An INACTIVE participant is removed this long after its lease lapsed. */
  readonly activityTimeoutMs: number;
}
