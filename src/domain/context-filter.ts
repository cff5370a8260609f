/** ListContexts' filter as it arrives, checked into a ContextFilter. */
import {
  CONTEXT_STATUSES,
  CONTEXT_TYPES,
  LIFECYCLE_STAGES,
  type ContextFilter,
} from "./context.js";
import { LIMITS } from "./limits.js";
import { Violations } from "./validation.js";

/** Enum values unchecked; undefined or "" = match everything. */
export interface ContextFilterInput {
  readonly type?: string;
  readonly status?: string;
  readonly lifecycleStage?: string;
  readonly owner?: string;
  readonly namePrefix?: string;
  readonly tag?: string;
}

export function validateContextFilter(input: ContextFilterInput): ContextFilter {
  const v = new Violations();
  const filter: { -readonly [K in keyof ContextFilter]: ContextFilter[K] } = {};
  if (input.type !== undefined) filter.type = v.oneOf("filter.type", input.type, CONTEXT_TYPES);
  if (input.status !== undefined) filter.status = v.oneOf("filter.status", input.status, CONTEXT_STATUSES);
  if (input.lifecycleStage !== undefined) {
    filter.lifecycleStage = v.oneOf("filter.lifecycle_stage", input.lifecycleStage, LIFECYCLE_STAGES);
  }
  if (input.owner) {
    v.text("filter.owner", input.owner, { max: LIMITS.principalChars });
    filter.owner = input.owner;
  }
  if (input.namePrefix) {
    v.text("filter.name_prefix", input.namePrefix, { max: LIMITS.nameChars });
    filter.namePrefix = input.namePrefix;
  }
  if (input.tag) {
    v.text("filter.tag", input.tag, { max: LIMITS.tagChars });
    filter.tag = input.tag;
  }
  v.throwIfAny();
  return filter;
}
