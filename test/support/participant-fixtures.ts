/** Participants for store tests: every field set to something non-default. */
import { randomUUID } from "node:crypto";
import type { Participant } from "../../src/domain/participant.js";
import { at } from "./context-fixtures.js";

/** A valid ACTIVE participant of `contextId`, joined at BASE with a 30 s lease. */
export function makeParticipant(contextId: string, overrides: Partial<Participant> = {}): Participant {
  const joinedAt = overrides.joinedAt ?? at(0);
  return {
    participantId: randomUUID(),
    contextId,
    agentId: `agent-${randomUUID().slice(0, 8)}`,
    participantType: "AGENT",
    displayName: "Planner\nbot ✓",
    status: "ACTIVE",
    roles: ["contributor", "reviewer"],
    capabilities: ["plan", "code"],
    metadata: { model: "m1", limits: { tokens: 4096, tools: ["a", "b"] }, flag: false, none: null },
    joinedAt,
    lastActivityAt: joinedAt,
    leaseExpiresAt: new Date(joinedAt.getTime() + 30_000),
    inactiveSince: null,
    ...overrides,
  };
}

/** `p` after its lease lapsed at lease_expires_at (as the sweeper marks it). */
export function lapsed(p: Participant): Participant {
  return { ...p, status: "INACTIVE", inactiveSince: p.leaseExpiresAt };
}
