/**
 * Expiry, run by every instance on a timer: lapsed leases → INACTIVE, long-INACTIVE participants
 * → removed, idle contexts → TERMINATED, terminated contexts → deleted after their cleanup delay.
 * Also history upkeep: events older than EVENT_RETENTION_REVISIONS are compacted away (a state
 * snapshot is stored where they end, so every retained revision stays readable), and the events
 * of contexts deleted over an hour ago (kept that long for watchers to read CONTEXT_DELETED) go.
 *
 * Safe with many instances: candidates are found without locks, then each context is locked with
 * SKIP LOCKED and its condition re-checked under the lock, so one change happens once (another
 * sweeper skips the context, or finds the condition gone). An instance that dies mid-pass rolls
 * back, and the next pass anywhere picks the work up: deadlines are absolute times in the database.
 */
import { expiryOf } from "../domain/context.js";
import type { Participant, PresencePolicy } from "../domain/participant.js";
import type { Logger } from "../logger.js";
import { changeOf, contextPayload, eventsOf, nextSystemRevision, participantPayload, SYSTEM_ACTOR } from "./changes.js";
import { ALL_CONTEXTS, type Clock, type ContextStore, type ContextTx, type ServiceMetrics, type WriteBase } from "./ports.js";
import { stateAtRevision } from "./state-history.js";

export interface SweeperOptions {
  readonly intervalMs: number;
  /** Most contexts per kind of expiry in one pass. */
  readonly batchSize: number;
  /** EVENT_RETENTION_REVISIONS: revisions of history kept per context. */
  readonly retentionRevisions: number;
}

/** What one pass did. */
export interface SweepCounts {
  lapsed: number;
  removed: number;
  terminated: number;
  deleted: number;
  /** Contexts whose history was compacted. */
  compacted: number;
  /** Event rows of deleted contexts purged. */
  purged: number;
}

/** Participants changed per context in one transaction, at most: a huge backlog is taken in slices. */
const PARTICIPANTS_PER_CONTEXT = 1000;

/** How long the events of a deleted context outlive it, for watchers and readers to see CONTEXT_DELETED. */
const DELETED_EVENTS_KEPT_MS = 3_600_000;

/** Event rows of deleted contexts purged per context slot of a pass. */
const PURGED_PER_BATCH_ITEM = 100;

/**
 * Contexts revised since the last pass, kept for the compaction check by key (at most this many;
 * past it the slice scan finds the rest), and looked up per pass (the rest wait for the next).
 */
const MAX_REVISED = 100_000;
const REVISED_PER_PASS = 10_000;

export class Sweeper {
  private timer: NodeJS.Timeout | undefined;
  /**
   * Contexts revised since the last pass, from every instance's rings (revised()): only a revision
   * moves a context past its compaction point, so these are checked by key each pass, and the
   * slice scan of every context (contextsToCompact) is only the backstop for revisions this
   * instance did not hear (before it started, or while Redis was away).
   */
  private readonly revisedSince = new Set<string>();
  private running: Promise<unknown> | undefined;
  private stopped = true;

  constructor(
    private readonly store: ContextStore,
    private readonly clock: Clock,
    private readonly presence: PresencePolicy,
    private readonly options: SweeperOptions,
    private readonly logger: Logger,
    /** Counts of every pass, by kind; none when absent. */
    private readonly metrics?: Pick<ServiceMetrics, "sweepPassed">,
  ) {}

  /** A ring: `contextId` reached a new revision (ALL_CONTEXTS names none: the backstop scan covers it). */
  revised(contextId: string): void {
    if (contextId === ALL_CONTEXTS || this.revisedSince.size >= MAX_REVISED) return;
    this.revisedSince.add(contextId);
  }

  /** Sweeps every intervalMs until stop(); a pass never overlaps the previous one. */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.schedule();
  }

  /** Stops the timer and waits for a pass in progress to finish. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    await this.running;
  }

  /** One pass over every kind of expiry. */
  async sweepOnce(): Promise<SweepCounts> {
    const counts: SweepCounts = { lapsed: 0, removed: 0, terminated: 0, deleted: 0, compacted: 0, purged: 0 };
    const now = this.clock.now();
    const { batchSize } = this.options;
    const cutoff = new Date(now.getTime() - this.presence.activityTimeoutMs);
    for (const id of await this.store.sweep.contextsWithLapsedLeases(now, batchSize)) {
      counts.lapsed += await this.inContext(id, (tx, base) => this.lapse(tx, base, now));
    }
    for (const id of await this.store.sweep.contextsWithExpiredParticipants(cutoff, batchSize)) {
      counts.removed += await this.inContext(id, (tx, base) => this.removeExpired(tx, base, cutoff, now));
    }
    for (const id of await this.store.sweep.expiredContexts(now, batchSize)) {
      counts.terminated += await this.inContext(id, (tx, base) => this.expire(tx, base, now));
    }
    for (const id of await this.store.sweep.contextsDueForCleanup(now, batchSize)) {
      counts.deleted += await this.inContext(id, (tx, base) => this.cleanUp(tx, base, now));
    }
    const retention = this.options.retentionRevisions;
    // Slack: a context is compacted in slices of at least retention/10 revisions, not on every write.
    const slack = Math.max(1, Math.floor(retention / 10));
    const due = new Set(await this.store.sweep.contextsToCompactAmong(this.takeRevised(), retention, slack));
    for (const id of await this.store.sweep.contextsToCompact(retention, slack, batchSize)) due.add(id);
    let taken = 0;
    for (const id of due) {
      // Past this pass's share: still due, so looked up again next pass.
      if (taken++ >= batchSize) this.revised(id);
      else counts.compacted += await this.compact(id, retention);
    }
    counts.purged = await this.store.sweep.purgeDeletedContextEvents(new Date(now.getTime() - DELETED_EVENTS_KEPT_MS), batchSize * PURGED_PER_BATCH_ITEM);
    return counts;
  }

  /** Up to REVISED_PER_PASS of the contexts revised since the last pass, taken out of the set. */
  private takeRevised(): string[] {
    const taken: string[] = [];
    for (const id of this.revisedSince) {
      if (taken.length >= REVISED_PER_PASS) break;
      taken.push(id);
      this.revisedSince.delete(id);
    }
    return taken;
  }

  private schedule(): void {
    this.timer = setTimeout(() => {
      this.running = this.sweepOnce()
        .then((counts) => {
          this.metrics?.sweepPassed({ ...counts });
          if (Object.values(counts).some((n) => n > 0)) this.logger.info({ ...counts }, "sweep");
        })
        .catch((error: unknown) => this.logger.warn({ err: error }, "sweep failed; retrying next pass"))
        .finally(() => {
          if (!this.stopped) this.schedule();
        });
    }, this.options.intervalMs);
    // The sweeper alone never keeps the process alive.
    this.timer.unref();
  }

  /** Runs `work` on one context locked with SKIP LOCKED; 0 when another transaction holds it. */
  private async inContext(contextId: string, work: (tx: ContextTx, base: WriteBase) => Promise<number>): Promise<number> {
    try {
      return await this.store.transaction({}, async (tx) => {
        const { base } = await tx.lockBase({ contextId, withState: false, agents: [], skipLocked: true });
        return base === null ? 0 : work(tx, base);
      });
    } catch (error) {
      this.logger.warn({ err: error, contextId }, "sweep of a context failed; retrying next pass");
      return 0;
    }
  }

  /**
   * Drops a context's events up to revision - retention. The state at that revision is rebuilt
   * first (outside the transaction: history at or before a committed revision never changes) and
   * stored as a snapshot, so every revision after the compaction point keeps a replay base. Under
   * the lock, a compaction horizon that moved since the read means another instance compacted
   * meanwhile (the rebuilt state may miss events): this pass leaves the context alone.
   */
  private async compact(contextId: string, retention: number): Promise<number> {
    try {
      const seen = await this.store.getContext({}, contextId, { withState: false });
      if (seen === null) return 0;
      const upTo = seen.revision - retention;
      if (upTo <= seen.compactRevision) return 0;
      const { state, baseRevision } = await stateAtRevision(this.store, {}, contextId, upTo);
      return await this.inContext(contextId, async (tx, { context }) => {
        if (context.compactRevision !== seen.compactRevision) return 0;
        if (baseRevision !== upTo) await tx.saveStateSnapshot(contextId, upTo, state);
        await tx.compactHistory(contextId, upTo);
        return 1;
      });
    } catch (error) {
      this.logger.warn({ err: error, contextId }, "compaction of a context failed; retrying next pass");
      return 0;
    }
  }

  private async lapse(tx: ContextTx, base: WriteBase, now: Date): Promise<number> {
    const lapsed = await tx.lapsedParticipants(base.context.contextId, now, PARTICIPANTS_PER_CONTEXT);
    if (lapsed.length === 0) return 0;
    // inactive_since is when the lease lapsed, not when we noticed: restarts never extend it.
    const inactive: Participant[] = lapsed.map((p) => ({ ...p, status: "INACTIVE", inactiveSince: p.leaseExpiresAt }));
    const revised = nextSystemRevision(base.context, now);
    const events = eventsOf(revised, "PARTICIPANT_UPDATED", inactive.map(participantPayload), SYSTEM_ACTOR, "lease expired");
    await tx.finish(changeOf(base, revised, events, { updated: inactive }));
    return inactive.length;
  }

  private async removeExpired(tx: ContextTx, base: WriteBase, cutoff: Date, now: Date): Promise<number> {
    const { context } = base;
    const expired = await tx.expiredParticipants(context.contextId, cutoff, PARTICIPANTS_PER_CONTEXT);
    if (expired.length === 0) return 0;
    const revised = nextSystemRevision({ ...context, participantCount: context.participantCount - expired.length }, now);
    const events = eventsOf(revised, "PARTICIPANT_LEFT", expired.map(participantPayload), SYSTEM_ACTOR, "expired");
    await tx.finish(changeOf(base, revised, events, { deleted: expired.map((p) => p.participantId) }));
    return expired.length;
  }

  /**
   * Terminates a context idle past expires_at. A participant holding a live lease counts as
   * activity: the context is then kept, its expiry moved on from now, without a revision
   * (nothing about it changed but the bookkeeping of when it was last used). A context found
   * before its expiry (its sweep may come up to a tenth of the timeout early) is kept as it is,
   * its sweep re-armed at the expiry: keepAlive with its own last activity and expiry.
   */
  private async expire(tx: ContextTx, base: WriteBase, now: Date): Promise<number> {
    const { context } = base;
    if (context.status === "TERMINATED" || context.expiresAt === null) return 0;
    if (context.expiresAt > now) {
      await tx.keepAlive(context.contextId, context.lastActivityAt, context.expiresAt);
      return 0;
    }
    if ((await tx.latestPresence(context.contextId, now)) !== null) {
      await tx.keepAlive(context.contextId, now, expiryOf(context.configuration, now));
      return 0;
    }
    const revised = nextSystemRevision({ ...context, status: "TERMINATED", terminatedAt: context.expiresAt }, now);
    await tx.finish(changeOf(base, revised, eventsOf(revised, "CONTEXT_STATUS_CHANGED", [contextPayload(revised)], SYSTEM_ACTOR, "expired")));
    return 1;
  }

  private async cleanUp(tx: ContextTx, base: WriteBase, now: Date): Promise<number> {
    const { context } = base;
    const { autoCleanup, cleanupDelayMs } = context.configuration;
    if (context.status !== "TERMINATED" || !autoCleanup || context.terminatedAt === null) return 0;
    if (context.terminatedAt.getTime() + cleanupDelayMs > now.getTime()) return 0;
    const gone = nextSystemRevision(context, now);
    await tx.finish(changeOf(base, null, eventsOf(gone, "CONTEXT_DELETED", [contextPayload(gone)], SYSTEM_ACTOR, "cleanup")));
    return 1;
  }
}
