/**
 * Whether a watcher may still read, decided in memory from the events it is delivered. READ
 * depends on the context's owner and visibility and on the caller's membership; each of those
 * changes only through an event of the context, so replaying the events onto the state checked at
 * the start keeps the answer exact without a database read per revision.
 */
import type { Context } from "../domain/context.js";
import type { Participant } from "../domain/participant.js";
import { permissionsOf } from "../domain/permissions.js";
import type { RevisionBatch } from "./watch-types.js";

export class ReadAccess {
  private accessControl: Context["accessControl"];
  private roles: Participant["roles"] | null;
  /** The answer for the current context and member: recomputed only when an event changes one. */
  private readable: boolean;

  /**
   * @param principal the watching caller
   * @param context the context as checked at the start (revision `checkedAt`)
   * @param member the caller's membership, read at or after `checkedAt` (null: none)
   * @param checkedAt revisions up to this one are already reflected in `context` and `member`
   */
  constructor(
    private readonly principal: string,
    context: Pick<Context, "accessControl">,
    member: Pick<Participant, "roles"> | null,
    private readonly checkedAt: number,
  ) {
    // Only what READ depends on, held as the fields themselves (no object of its own): the context
    // read at the start (its shared state too, with a snapshot) and the membership row would
    // otherwise live as long as the watch, once per watch.
    this.accessControl = context.accessControl;
    this.roles = member === null ? null : member.roles;
    this.readable = this.decide();
  }

  /** The caller may read now. */
  get canRead(): boolean {
    return this.readable;
  }

  /**
   * Applies one revision's events and says whether the caller may still read after it. Old
   * revisions (a resume from far back) are not replayed: the state checked at the start is newer,
   * and replaying a removal that was later undone would end a stream that is still allowed.
   * Runs once per revision per stream, so a revision that touches neither the context nor this
   * caller's membership (most of them: state changes) costs no permission check.
   */
  apply(batch: RevisionBatch): boolean {
    if (batch.revision <= this.checkedAt) return true;
    let changed = false;
    for (const event of batch.events) {
      const payload = event.payload;
      if (payload.kind === "context" && event.type !== "CONTEXT_DELETED") {
        this.accessControl = payload.context.accessControl;
        changed = true;
      } else if (payload.kind === "participant" && payload.participant.agentId === this.principal) {
        // The membership a removal leaves is none; a join or an update replaces the roles.
        this.roles = event.type === "PARTICIPANT_LEFT" ? null : payload.participant.roles;
        changed = true;
      }
    }
    if (changed) this.readable = this.decide();
    return this.readable;
  }

  private decide(): boolean {
    return permissionsOf(this.principal, { accessControl: this.accessControl }, this.roles === null ? null : { roles: this.roles }).has("READ");
  }
}
