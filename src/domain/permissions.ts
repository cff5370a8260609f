/**
 * Who may do what to a context (shared/API.md, "Permissions"). One pure module decides; the
 * services ask it. Participants' roles join the decision when participants land.
 */
import { AppError } from "./app-error.js";
import type { Context } from "./context.js";

export const PERMISSIONS = ["READ", "WRITE", "MANAGE_PARTICIPANTS", "DELETE", "ADMIN"] as const;
export type Permission = (typeof PERMISSIONS)[number];

/** What `principal` may do to `context`. */
export function permissionsOf(principal: string, context: Pick<Context, "accessControl">): ReadonlySet<Permission> {
  if (principal === context.accessControl.owner) return new Set(PERMISSIONS);
  if (context.accessControl.visibility === "PUBLIC") return new Set(["READ"]);
  return new Set();
}

/** Throws PERMISSION_DENIED/FORBIDDEN unless `principal` holds `permission` on `context`. */
export function authorize(
  principal: string,
  context: Pick<Context, "contextId" | "accessControl">,
  permission: Permission,
): void {
  if (permissionsOf(principal, context).has(permission)) return;
  throw new AppError(
    "FORBIDDEN",
    `principal ${principal} lacks ${permission} on context ${context.contextId}`,
    { metadata: { context_id: context.contextId, permission } },
  );
}
