/**
 * Turns what a client sent into a valid ContextSpec (defaults applied), or a VALIDATION_ERROR that
 * names every bad field. Creation and UpdateContext share one validator: an update is the current
 * spec with the masked fields replaced, validated whole.
 */
import {
  CONFIGURATION_DEFAULTS,
  CONTEXT_TYPES,
  DEFAULT_ROLE,
  ISOLATION_LEVELS,
  JOIN_POLICIES,
  PERSISTENCE_LEVELS,
  PRIORITIES,
  VISIBILITIES,
  type Context,
  type ContextSpec,
} from "./context.js";
import type { JsonObject } from "./json.js";
import { LIMITS } from "./limits.js";
import type { SharedState } from "./shared-state.js";
import { validateSharedState, type SharedStateInput } from "./shared-state-validation.js";
import { Violations } from "./validation.js";

/** A context's settable fields as they arrive: enums unchecked, undefined = not set (default). */
export interface ContextSpecInput {
  readonly name?: string;
  readonly description?: string;
  readonly type?: string;
  readonly configuration?: {
    readonly maxParticipants?: number;
    readonly maxSessions?: number;
    readonly timeoutMs?: number;
    readonly persistenceLevel?: string;
    readonly isolationLevel?: string;
    readonly autoCleanup?: boolean;
    readonly cleanupDelayMs?: number;
  };
  readonly accessControl?: {
    readonly visibility?: string;
    readonly joinPolicy?: string;
    readonly defaultRole?: string;
    readonly requiredCapabilities?: readonly string[];
    readonly requiredRoles?: readonly string[];
  };
  readonly metadata?: {
    readonly tags?: readonly string[];
    readonly category?: string;
    readonly priority?: string;
    readonly customData?: JsonObject;
  };
}

export interface CreateContextInput {
  readonly context: ContextSpecInput & { readonly sharedState?: SharedStateInput };
  readonly requestId: string;
}

export interface ValidCreate {
  readonly spec: ContextSpec;
  readonly sharedState: SharedState;
  /** "" when the caller sent none. */
  readonly requestId: string;
}

function validateSpec(v: Violations, at: string, input: ContextSpecInput): ContextSpec {
  const name = input.name ?? "";
  v.text(`${at}.name`, name, { min: 1, max: LIMITS.nameChars });
  const description = input.description ?? "";
  v.text(`${at}.description`, description, { max: LIMITS.descriptionChars, multiline: true });
  const type = v.oneOf(`${at}.type`, input.type, CONTEXT_TYPES);

  const c = input.configuration ?? {};
  const cfg = `${at}.configuration`;
  const configuration = {
    maxParticipants: c.maxParticipants ?? CONFIGURATION_DEFAULTS.maxParticipants,
    maxSessions: c.maxSessions ?? CONFIGURATION_DEFAULTS.maxSessions,
    timeoutMs: c.timeoutMs ?? CONFIGURATION_DEFAULTS.timeoutMs,
    persistenceLevel: v.oneOf(`${cfg}.persistence_level`, c.persistenceLevel, PERSISTENCE_LEVELS, CONFIGURATION_DEFAULTS.persistenceLevel),
    isolationLevel: v.oneOf(`${cfg}.isolation_level`, c.isolationLevel, ISOLATION_LEVELS, CONFIGURATION_DEFAULTS.isolationLevel),
    autoCleanup: c.autoCleanup ?? CONFIGURATION_DEFAULTS.autoCleanup,
    cleanupDelayMs: c.cleanupDelayMs ?? CONFIGURATION_DEFAULTS.cleanupDelayMs,
  };
  const { maxParticipants, maxSessions, timeoutMs, cleanupDelayMs } = LIMITS;
  v.integer(`${cfg}.max_participants`, configuration.maxParticipants, maxParticipants.min, maxParticipants.max);
  v.integer(`${cfg}.max_sessions`, configuration.maxSessions, maxSessions.min, maxSessions.max);
  v.integer(`${cfg}.timeout_ms`, configuration.timeoutMs, timeoutMs.min, timeoutMs.max);
  v.integer(`${cfg}.cleanup_delay_ms`, configuration.cleanupDelayMs, cleanupDelayMs.min, cleanupDelayMs.max);

  const a = input.accessControl ?? {};
  const acl = `${at}.access_control`;
  const defaultRole = a.defaultRole === undefined || a.defaultRole === "" ? DEFAULT_ROLE : a.defaultRole;
  v.text(`${acl}.default_role`, defaultRole, { min: 1, max: LIMITS.roleChars });
  const requiredCapabilities = [...(a.requiredCapabilities ?? [])];
  v.names(`${acl}.required_capabilities`, requiredCapabilities, LIMITS.requiredCapabilities, LIMITS.capabilityChars);
  const requiredRoles = [...(a.requiredRoles ?? [])];
  v.names(`${acl}.required_roles`, requiredRoles, LIMITS.requiredRoles, LIMITS.roleChars);
  const accessControl = {
    visibility: v.oneOf(`${acl}.visibility`, a.visibility, VISIBILITIES, "PRIVATE"),
    joinPolicy: v.oneOf(`${acl}.join_policy`, a.joinPolicy, JOIN_POLICIES, "INVITATION_ONLY"),
    defaultRole,
    requiredCapabilities,
    requiredRoles,
  };

  const m = input.metadata ?? {};
  const meta = `${at}.metadata`;
  const tags = [...(m.tags ?? [])];
  v.names(`${meta}.tags`, tags, LIMITS.tags, LIMITS.tagChars);
  const category = m.category ?? "";
  v.text(`${meta}.category`, category, { max: LIMITS.categoryChars });
  const customData = m.customData ?? {};
  v.json(`${meta}.custom_data`, customData, LIMITS.customDataBytes, LIMITS.jsonDepth);
  const metadata = {
    tags,
    category,
    priority: v.oneOf(`${meta}.priority`, m.priority, PRIORITIES, "NORMAL"),
    customData,
  };

  return { name, description, type, configuration, accessControl, metadata };
}

function validateRequestId(v: Violations, field: string, requestId: string): void {
  if (requestId !== "") v.text(field, requestId, { min: 1, max: LIMITS.requestIdChars });
}

/**
 * Validates one CreateContext request; `at` prefixes field paths (e.g. `requests[3]`);
 * `maxStateBytes` is SHARED_STATE_MAX_BYTES, the same limit UpdateSharedState enforces.
 */
export function validateCreate(input: CreateContextInput, at = "", maxStateBytes: number = LIMITS.sharedStateBytes): ValidCreate {
  const v = new Violations();
  const result = collectCreate(v, input, at, maxStateBytes);
  v.throwIfAny();
  return result;
}

function collectCreate(v: Violations, input: CreateContextInput, at: string, maxStateBytes: number): ValidCreate {
  const prefix = at === "" ? "" : `${at}.`;
  const spec = validateSpec(v, `${prefix}context`, input.context);
  const sharedState = validateSharedState(v, `${prefix}context.shared_state`, input.context.sharedState ?? {}, maxStateBytes);
  validateRequestId(v, `${prefix}request_id`, input.requestId);
  return { spec, sharedState, requestId: input.requestId };
}

/**
 * Validates a BatchCreateContexts request whole: every item, plus names and request ids repeated
 * within the batch (the batch is all or nothing, so one bad item fails it).
 */
export function validateBatchCreate(requests: readonly CreateContextInput[], maxStateBytes: number = LIMITS.sharedStateBytes): ValidCreate[] {
  const v = new Violations();
  if (requests.length === 0) v.add("requests", "must hold at least one request");
  if (requests.length > LIMITS.batchSize) {
    v.add("requests", `must hold at most ${LIMITS.batchSize} requests (got ${requests.length})`);
    v.throwIfAny();
  }
  const items = requests.map((r, i) => collectCreate(v, r, `requests[${i}]`, maxStateBytes));
  const names = new Map<string, number>();
  const ids = new Set<string>();
  items.forEach((item, i) => {
    const first = names.get(item.spec.name);
    if (first !== undefined) v.add(`requests[${i}].context.name`, `repeats the name of requests[${first}]`);
    else names.set(item.spec.name, i);
    if (item.requestId !== "" && ids.has(item.requestId)) {
      v.add(`requests[${i}].request_id`, "repeats another request's request_id");
    }
    ids.add(item.requestId);
  });
  v.throwIfAny();
  return items;
}

/** update_mask paths UpdateContext accepts, and what each replaces. */
const MESSAGE_FIELDS = {
  configuration: {
    max_participants: "maxParticipants",
    max_sessions: "maxSessions",
    timeout_ms: "timeoutMs",
    persistence_level: "persistenceLevel",
    isolation_level: "isolationLevel",
    auto_cleanup: "autoCleanup",
    cleanup_delay_ms: "cleanupDelayMs",
  },
  access_control: {
    visibility: "visibility",
    join_policy: "joinPolicy",
    default_role: "defaultRole",
    required_capabilities: "requiredCapabilities",
    required_roles: "requiredRoles",
  },
  metadata: { tags: "tags", category: "category", priority: "priority", custom_data: "customData" },
} as const;
const TOP_FIELDS = { name: "name", description: "description" } as const;
const MESSAGE_KEYS = { configuration: "configuration", access_control: "accessControl", metadata: "metadata" } as const;
const OUTPUT_ONLY = new Set([
  "context_id", "status", "lifecycle_stage", "participant_count", "session_count", "revision",
  "created_at", "updated_at", "last_activity_at", "expires_at", "access_control.owner",
]);

export interface ValidUpdate {
  readonly spec: ContextSpec;
  /** The mask touches access_control, which needs ADMIN. */
  readonly touchesAccessControl: boolean;
}

/**
 * Applies UpdateContext's `patch` to `current` along `mask` (proto field paths) and validates the
 * result whole. A masked field left unset in the patch goes back to its default (AIP-134).
 */
export function validateUpdate(current: Context, patch: ContextSpecInput, mask: readonly string[]): ValidUpdate {
  const v = new Violations();
  if (mask.length === 0) v.add("update_mask", "must name at least one field to change");
  type Mutable = { -readonly [K in keyof ContextSpecInput]: Record<string, unknown> | string | undefined };
  const merged: Mutable = {
    name: current.name,
    description: current.description,
    type: current.type,
    configuration: { ...current.configuration },
    accessControl: { ...current.accessControl },
    metadata: { ...current.metadata },
  };
  let touchesAccessControl = false;
  for (const path of mask) {
    const [head = "", sub, ...rest] = path.split(".");
    if (head in TOP_FIELDS && sub === undefined) {
      const key = TOP_FIELDS[head as keyof typeof TOP_FIELDS];
      merged[key] = patch[key];
      continue;
    }
    if (head in MESSAGE_FIELDS && rest.length === 0) {
      const key = MESSAGE_KEYS[head as keyof typeof MESSAGE_KEYS];
      touchesAccessControl ||= head === "access_control";
      if (sub === undefined) {
        merged[key] = { ...(patch[key] ?? {}) };
        continue;
      }
      const fields: Record<string, string> = MESSAGE_FIELDS[head as keyof typeof MESSAGE_FIELDS];
      const subKey = fields[sub];
      if (subKey !== undefined) {
        const target = merged[key] as Record<string, unknown>;
        target[subKey] = (patch[key] as Record<string, unknown> | undefined)?.[subKey];
        continue;
      }
    }
    if (OUTPUT_ONLY.has(path)) v.add("update_mask", `${path} is output only${head === "status" || head === "lifecycle_stage" ? ": use TransitionContext" : ""}`);
    else if (path === "type") v.add("update_mask", "type cannot be changed after creation");
    else if (path === "shared_state" || head === "shared_state") v.add("update_mask", "shared_state is changed by UpdateSharedState");
    else v.add("update_mask", `unknown field path "${path}"`);
  }
  const spec = validateSpec(v, "context", merged as ContextSpecInput);
  if (v.empty && spec.configuration.maxParticipants < current.participantCount) {
    v.add(
      "context.configuration.max_participants",
      `must be at least the current participant count (${current.participantCount})`,
    );
  }
  v.throwIfAny();
  return { spec, touchesAccessControl };
}
