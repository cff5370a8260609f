/**
 * The Context resource as the service sees it: plain TypeScript, no proto types.
 * Enum values are the proto names without their type prefix (ACTIVE, not CONTEXT_STATUS_ACTIVE).
 */
import type { JsonObject } from "./json.js";
import type { Priority } from "./priority.js";
import type { SharedState } from "./shared-state.js";

export { PRIORITIES, type Priority } from "./priority.js";

export const CONTEXT_TYPES = [
  "COLLABORATIVE",
  "SEQUENTIAL",
  "PARALLEL",
  "HIERARCHICAL",
  "PEER_TO_PEER",
  "BROADCAST",
  "PIPELINE",
] as const;
export type ContextType = (typeof CONTEXT_TYPES)[number];

export const CONTEXT_STATUSES = ["ACTIVE", "PAUSED", "COMPLETED", "TERMINATED"] as const;
export type ContextStatus = (typeof CONTEXT_STATUSES)[number];

export const LIFECYCLE_STAGES = ["PLANNING", "EXECUTING", "MONITORING", "COMPLETED"] as const;
export type LifecycleStage = (typeof LIFECYCLE_STAGES)[number];

export const PERSISTENCE_LEVELS = ["NONE", "SESSION", "PERSISTENT"] as const;
export type PersistenceLevel = (typeof PERSISTENCE_LEVELS)[number];

export const ISOLATION_LEVELS = ["STRICT", "SHARED", "RELAXED"] as const;
export type IsolationLevel = (typeof ISOLATION_LEVELS)[number];

export const VISIBILITIES = ["PRIVATE", "PUBLIC"] as const;
export type Visibility = (typeof VISIBILITIES)[number];

export const JOIN_POLICIES = ["INVITATION_ONLY", "OPEN"] as const;
export type JoinPolicy = (typeof JOIN_POLICIES)[number];


export interface ContextConfiguration {
  readonly maxParticipants: number;
  readonly maxSessions: number;
  /** 0 = never expires. */
  readonly timeoutMs: number;
  readonly persistenceLevel: PersistenceLevel;
  readonly isolationLevel: IsolationLevel;
  readonly autoCleanup: boolean;
  readonly cleanupDelayMs: number;
}

export interface AccessControl {
  readonly owner: string;
  readonly visibility: Visibility;
  readonly joinPolicy: JoinPolicy;
  readonly defaultRole: string;
  readonly requiredCapabilities: readonly string[];
  readonly requiredRoles: readonly string[];
}

export interface ContextMetadata {
  readonly tags: readonly string[];
  readonly category: string;
  readonly priority: Priority;
  readonly customData: JsonObject;
}

/** The fields a caller sets (on create, or through UpdateContext's update_mask), after validation. */
export interface ContextSpec {
  readonly name: string;
  readonly description: string;
  readonly type: ContextType;
  readonly configuration: ContextConfiguration;
  readonly accessControl: Omit<AccessControl, "owner">;
  readonly metadata: ContextMetadata;
}

/** A stored context. `sharedState` is present only when it was asked for (it can be large). */
export interface Context extends ContextSpec {
  readonly contextId: string;
  readonly status: ContextStatus;
  readonly lifecycleStage: LifecycleStage;
  readonly accessControl: AccessControl;
  readonly sharedState?: SharedState;
  readonly participantCount: number;
  readonly sessionCount: number;
  readonly revision: number;
  readonly createdAt: Date;
  readonly updatedAt: Date;
  readonly lastActivityAt: Date;
  /** null when timeoutMs is 0. */
  readonly expiresAt: Date | null;
  /** When the status became TERMINATED (auto-cleanup counts from here); null before. */
  readonly terminatedAt: Date | null;
  /** Events up to this revision are compacted away (0 = none): older history is gone. */
  readonly compactRevision: number;
  /** The revision of the newest stored snapshot of the shared state (replays start there). */
  readonly stateSnapshotRevision: number;
}

/** ListContexts' filter; an absent field matches everything. */
export interface ContextFilter {
  readonly type?: ContextType;
  readonly status?: ContextStatus;
  readonly lifecycleStage?: LifecycleStage;
  readonly owner?: string;
  readonly namePrefix?: string;
  readonly tag?: string;
}

export const CONFIGURATION_DEFAULTS: ContextConfiguration = {
  maxParticipants: 10,
  maxSessions: 5,
  timeoutMs: 3_600_000,
  persistenceLevel: "PERSISTENT",
  isolationLevel: "SHARED",
  autoCleanup: true,
  cleanupDelayMs: 300_000,
};

export const DEFAULT_ROLE = "contributor";

/** When a context with this configuration, last active at `lastActivityAt`, expires. */
export function expiryOf(configuration: ContextConfiguration, lastActivityAt: Date): Date | null {
  return configuration.timeoutMs === 0
    ? null
    : new Date(lastActivityAt.getTime() + configuration.timeoutMs);
}
