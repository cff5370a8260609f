/**
 * Who may do what to a context (shared/API.md, "Permissions"). One pure module decides; the
 * services ask it, and the store's read predicate mirrors `mayRead` in SQL.
 */
import { AppError } from "./app-error.js";
import type { Context } from "./context.js";
import type { Participant } from "./participant.js";

export const PERMISSIONS = ["READ", "WRITE", "MANAGE_PARTICIPANTS", "DELETE", "ADMIN"] as const;
export type Permission = (typeof PERMISSIONS)[number];

/**
 * The built-in roles; any other role name grants READ. A Map, not an object literal: role names
 * come from clients, and "constructor" or "__proto__" looked up in an object finds its prototype's.
 */
const ROLE_PERMISSIONS: ReadonlyMap<string, readonly Permission[]> = new Map<string, readonly Permission[]>([
  ["viewer", ["READ"]],
  ["reviewer", ["READ"]],
  ["contributor", ["READ", "WRITE"]],
  ["admin", PERMISSIONS],
]);

/** What a set of roles grants, in the contract's order. */
export function permissionsOfRoles(roles: readonly string[]): Permission[] {
  const granted = new Set<Permission>();
  for (const role of roles) for (const p of ROLE_PERMISSIONS.get(role) ?? ["READ"]) granted.add(p);
  return PERMISSIONS.filter((p) => granted.has(p));
}

/**
 * What `principal` may do to `context`, given its membership there (null when it has none): the
 * owner everything, a member what its roles grant, anyone READ on a PUBLIC context.
 */
export function permissionsOf(
  principal: string,
  context: Pick<Context, "accessControl">,
  member: Pick<Participant, "roles"> | null,
): ReadonlySet<Permission> {
  if (principal === context.accessControl.owner) return new Set(PERMISSIONS);
  const granted = new Set<Permission>(member ? permissionsOfRoles(member.roles) : []);
  if (context.accessControl.visibility === "PUBLIC") granted.add("READ");
  return granted;
}

/** Throws PERMISSION_DENIED/FORBIDDEN unless `principal` holds `permission` on `context`. */
export function authorize(
  principal: string,
  context: Pick<Context, "contextId" | "accessControl">,
  member: Pick<Participant, "roles"> | null,
  permission: Permission,
): void {
  if (permissionsOf(principal, context, member).has(permission)) return;
  throw forbidden(principal, context.contextId, permission);
}

export function forbidden(principal: string, contextId: string, permission: Permission, why = ""): AppError {
  return new AppError("FORBIDDEN", `principal ${principal} lacks ${permission} on context ${contextId}${why}`, {
    metadata: { context_id: contextId, permission },
  });
}
