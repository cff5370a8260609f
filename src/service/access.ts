/** The caller's standing in a context: its membership, and the READ check every read makes. */
import { AppError } from "../domain/app-error.js";
import type { Context } from "../domain/context.js";
import type { Participant } from "../domain/participant.js";
import { authorize } from "../domain/permissions.js";
import type { ContextStore, StoreCall } from "./ports.js";

/** The caller's membership, when it needs one: the owner's permissions do not depend on it. */
export function memberOf(
  lookup: { findMember(contextId: string, agentId: string): Promise<Participant | null> },
  context: Context,
  principal: string,
): Promise<Participant | null> {
  return principal === context.accessControl.owner ? Promise.resolve(null) : lookup.findMember(context.contextId, principal);
}

/** Reads a context `principal` may read: CONTEXT_NOT_FOUND or FORBIDDEN otherwise. */
export async function readableContext(
  store: ContextStore,
  call: StoreCall,
  principal: string,
  contextId: string,
  withState: boolean,
): Promise<Context> {
  const context = await store.getContext(call, contextId, { withState });
  if (context === null) throw AppError.contextNotFound(contextId);
  const member = await memberOf({ findMember: (id, agent) => store.findMember(call, id, agent) }, context, principal);
  authorize(principal, context, member, "READ");
  return context;
}
