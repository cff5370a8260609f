/**
 * An in-memory ContextStore for unit tests of the services: the semantics of the real store
 * (changes applied whole or not at all, only at their base revision; request keys; transactions
 * that roll back; the live-name uniqueness rule, keyset listing, the read rule), none of its SQL.
 * Writes run one at a time, like PGlite's.
 */
import { AppError } from "../../src/domain/app-error.js";
import type { Context } from "../../src/domain/context.js";
import type { ContextEvent } from "../../src/domain/event.js";
import type { JsonValue } from "../../src/domain/json.js";
import type { Participant } from "../../src/domain/participant.js";
import type { SharedState } from "../../src/domain/shared-state.js";
import type { StatisticsGroup } from "../../src/domain/statistics.js";
import type {
  ApplyOutcome,
  BaseQuery,
  ContextChange,
  ContextListQuery,
  ContextListResult,
  ContextStore,
  ContextTx,
  LeaseRenewal,
  ParticipantListQuery,
  ParticipantListResult,
  RequestKey,
  StateHistory,
  SweepCandidates,
  StoreCall,
  StoredResult,
  WriteBase,
} from "../../src/service/ports.js";

/** Contexts with at most this many participants are read whole into a base (as store/base-sql.ts does). */
const COMPLETE_UP_TO = 100;

interface Snapshot {
  readonly revision: number;
  readonly state: SharedState;
}

interface State {
  contexts: Map<string, Context>;
  participants: Map<string, Participant>;
  events: ContextEvent[];
  requests: Map<string, StoredResult & { createdAt: number }>;
  /** Per context, oldest first; arrays are replaced, never edited, so a copy of the map suffices. */
  snapshots: Map<string, readonly Snapshot[]>;
}

const DAY = 24 * 3_600_000;

function copy(state: State): State {
  return {
    contexts: new Map(state.contexts),
    participants: new Map(state.participants),
    events: [...state.events],
    requests: new Map(state.requests),
    snapshots: new Map(state.snapshots),
  };
}

/** Stored data is a copy, as a database's is: later edits of the caller's objects never leak in. */
function stored<T>(value: T): T {
  return structuredClone(value);
}

function withoutState(context: Context): Context {
  const { sharedState: _s, ...rest } = context;
  return rest;
}

function membersOf(state: State, contextId: string): Participant[] {
  return [...state.participants.values()].filter((p) => p.contextId === contextId);
}

function readable(state: State, principal: string, c: Context): boolean {
  return (
    c.accessControl.owner === principal ||
    c.accessControl.visibility === "PUBLIC" ||
    membersOf(state, c.contextId).some((p) => p.agentId === principal)
  );
}

function distinctContexts(participants: readonly Participant[], limit: number): string[] {
  return [...new Set(participants.map((p) => p.contextId))].slice(0, limit);
}

function byJoin(a: Participant, b: Participant): number {
  return a.joinedAt.getTime() - b.joinedAt.getTime() || (a.participantId < b.participantId ? -1 : 1);
}

export class MemoryContextStore implements ContextStore {
  private state: State = { contexts: new Map(), participants: new Map(), events: [], requests: new Map(), snapshots: new Map() };
  private queue: Promise<unknown> = Promise.resolve();
  /** Writes attempted (apply, applyAll, transaction), for tests that check work was (not) done. */
  writes = 0;

  constructor(private readonly now: () => number = Date.now) {}

  async transaction<T>(call: StoreCall, work: (tx: ContextTx) => Promise<T>): Promise<T> {
    return this.serially(call, async () => {
      const draft = copy(this.state);
      const result = await work(this.tx(draft));
      this.state = draft;
      return result;
    });
  }

  async loadBase(_call: StoreCall, query: BaseQuery): Promise<WriteBase | null> {
    return baseOf(this.state, query);
  }

  async apply(call: StoreCall, change: ContextChange): Promise<ApplyOutcome> {
    return this.serially(call, async () => {
      const draft = copy(this.state);
      const outcome = this.applyTo(draft, change);
      if (outcome.applied) this.state = draft;
      return outcome;
    });
  }

  async applyAll(call: StoreCall, changes: readonly ContextChange[]): Promise<ApplyOutcome[]> {
    return this.serially(call, async () => {
      const draft = copy(this.state);
      const outcomes = changes.map((c) => this.applyTo(draft, c));
      this.state = draft;
      return outcomes;
    });
  }

  async storedResult(_call: StoreCall, key: RequestKey): Promise<StoredResult | null> {
    return this.liveKey(this.state, key);
  }

  async stateHistory(_call: StoreCall, contextId: string, revision: number): Promise<StateHistory | null> {
    const context = this.state.contexts.get(contextId);
    if (!context) return null;
    const older = (this.state.snapshots.get(contextId) ?? []).filter((s) => s.revision <= revision);
    const snapshot = older[older.length - 1] ?? null;
    const changes = this.state.events
      .filter((e) => e.contextId === contextId && snapshot !== null && e.revision > snapshot.revision && e.revision <= revision)
      .sort((a, b) => a.revision - b.revision || a.seq - b.seq)
      .flatMap((e) => (e.payload.kind === "state" ? [e.payload.state] : []));
    return { revision: context.revision, compactRevision: context.compactRevision, snapshot, changes };
  }

  /** One write at a time; a deadline already passed starts none. */
  private serially<T>(call: StoreCall, work: () => Promise<T>): Promise<T> {
    const run = async (): Promise<T> => {
      if (call.deadline !== undefined && call.deadline <= this.now()) {
        throw new AppError("TIMEOUT", "the call's deadline passed");
      }
      this.writes++;
      return work();
    };
    const next = this.queue.then(run, run);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private liveKey(state: State, key: RequestKey): StoredResult | null {
    const prior = state.requests.get(`${key.principal}\u0000${key.requestId}`);
    return prior && prior.createdAt > this.now() - DAY ? { method: prior.method, result: prior.result } : null;
  }

  /** Applies `change` to `draft` as the change statement does: all of it, only at its base revision, only with a new request key. */
  private applyTo(draft: State, change: ContextChange): ApplyOutcome {
    const key = change.request?.key;
    if (key !== undefined) {
      const prior = this.liveKey(draft, key);
      if (prior !== null) return { applied: false, reason: "request", prior };
    }
    const current = draft.contexts.get(change.contextId);
    if (change.baseRevision === 0 ? current !== undefined : current?.revision !== change.baseRevision) {
      return { applied: false, reason: "revision" };
    }
    const next = change.context;
    let stored_: Context | null = null;
    if (next === null) {
      draft.contexts.delete(change.contextId);
      for (const p of membersOf(draft, change.contextId)) draft.participants.delete(p.participantId);
    } else {
      const taken =
        next.status !== "TERMINATED" &&
        [...draft.contexts.values()].some(
          (o) => o.contextId !== next.contextId && o.status !== "TERMINATED" && o.accessControl.owner === next.accessControl.owner && o.name === next.name,
        );
      if (taken) throw new AppError("CONTEXT_EXISTS", `a context named "${next.name}" already exists for this owner`);
      const compactRevision = current?.compactRevision ?? 0;
      const snapshotRevision = Math.max(current?.stateSnapshotRevision ?? 0, next.stateSnapshotRevision);
      const sharedState = stored(change.sharedState ?? current?.sharedState ?? { variables: {}, resources: {}, dependencies: [], goals: [] });
      stored_ = { ...withoutState(next), compactRevision, stateSnapshotRevision: snapshotRevision };
      draft.contexts.set(next.contextId, { ...stored_, sharedState });
      if (change.snapshot === true) {
        const others = (draft.snapshots.get(next.contextId) ?? []).filter((s) => s.revision !== next.revision);
        draft.snapshots.set(next.contextId, [...others, { revision: next.revision, state: sharedState }].sort((a, b) => a.revision - b.revision));
      }
    }
    for (const p of change.inserted ?? []) {
      if (membersOf(draft, p.contextId).some((o) => o.agentId === p.agentId)) {
        throw new AppError("PARTICIPANT_ALREADY_EXISTS", `agent ${p.agentId} is already a participant`);
      }
      draft.participants.set(p.participantId, stored(p));
    }
    const updated: Participant[] = [];
    for (const p of change.updated ?? []) {
      const prior = draft.participants.get(p.participantId);
      if (!prior || prior.contextId !== change.contextId) continue;
      // A lease renewed meanwhile is not moved back (as the statement's greatest()).
      const merged: Participant = {
        ...p,
        lastActivityAt: new Date(Math.max(prior.lastActivityAt.getTime(), p.lastActivityAt.getTime())),
        leaseExpiresAt: new Date(Math.max(prior.leaseExpiresAt.getTime(), p.leaseExpiresAt.getTime())),
      };
      draft.participants.set(p.participantId, merged);
      updated.push(merged);
    }
    for (const id of change.deleted ?? []) draft.participants.delete(id);
    for (const e of change.events) {
      if (draft.events.some((o) => o.contextId === e.contextId && o.revision === e.revision && o.seq === e.seq)) {
        throw new Error("duplicate event key");
      }
      draft.events.push(stored(e));
    }
    if (key !== undefined) {
      draft.requests.set(`${key.principal}\u0000${key.requestId}`, { method: key.method, result: JSON.parse(JSON.stringify(change.request!.result)) as JsonValue, createdAt: this.now() });
    }
    return { applied: true, context: stored_, updated };
  }

  async getContext(_call: StoreCall, contextId: string, options: { withState: boolean }): Promise<Context | null> {
    const found = this.state.contexts.get(contextId);
    if (!found) return null;
    if (options.withState) return found;
    const { sharedState: _s, ...rest } = found;
    return rest;
  }

  async listContexts(_call: StoreCall, query: ContextListQuery): Promise<ContextListResult> {
    const { filter } = query;
    const matching = [...this.state.contexts.values()]
      .filter((c) => readable(this.state, query.principal, c))
      .filter((c) => !filter.type || c.type === filter.type)
      .filter((c) => !filter.status || c.status === filter.status)
      .filter((c) => !filter.lifecycleStage || c.lifecycleStage === filter.lifecycleStage)
      .filter((c) => !filter.owner || c.accessControl.owner === filter.owner)
      .filter((c) => !filter.namePrefix || c.name.startsWith(filter.namePrefix))
      .filter((c) => !filter.tag || c.metadata.tags.includes(filter.tag))
      .sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime() || (a.contextId < b.contextId ? 1 : -1));
    const after = query.after;
    const page = matching
      .filter(
        (c) =>
          !after ||
          c.createdAt.getTime() < after.createdAt.getTime() ||
          (c.createdAt.getTime() === after.createdAt.getTime() && c.contextId < after.contextId),
      )
      .slice(0, query.limit)
      .map(({ sharedState: _s, ...rest }) => rest);
    return { contexts: page, totalSize: matching.length };
  }

  async contextStatistics(_call: StoreCall, principal: string): Promise<StatisticsGroup[]> {
    const groups = new Map<string, StatisticsGroup>();
    for (const c of this.state.contexts.values()) {
      if (!readable(this.state, principal, c)) continue;
      const key = `${c.status}/${c.lifecycleStage}/${c.type}`;
      const g = groups.get(key) ?? { status: c.status, lifecycleStage: c.lifecycleStage, type: c.type, contexts: 0, participants: 0, maxParticipants: 0 };
      groups.set(key, {
        ...g,
        contexts: g.contexts + 1,
        participants: g.participants + c.participantCount,
        maxParticipants: Math.max(g.maxParticipants, c.participantCount),
      });
    }
    return [...groups.values()];
  }

  async listEvents(_call: StoreCall, contextId: string, from: { revision: number; seq: number }, limit: number): Promise<ContextEvent[]> {
    return this.state.events
      .filter((e) => e.contextId === contextId && (e.revision > from.revision || (e.revision === from.revision && e.seq >= from.seq)))
      .sort((a, b) => a.revision - b.revision || a.seq - b.seq)
      .slice(0, limit);
  }

  async findMember(_call: StoreCall, contextId: string, agentId: string): Promise<Participant | null> {
    return membersOf(this.state, contextId).find((p) => p.agentId === agentId) ?? null;
  }

  async getParticipant(_call: StoreCall, contextId: string, participantId: string): Promise<Participant | null> {
    const found = this.state.participants.get(participantId);
    return found && found.contextId === contextId ? found : null;
  }

  async listParticipants(_call: StoreCall, query: ParticipantListQuery): Promise<ParticipantListResult> {
    const { filter, after } = query;
    const matching = membersOf(this.state, query.contextId)
      .filter((p) => !filter.status || p.status === filter.status)
      .filter((p) => !filter.participantType || p.participantType === filter.participantType)
      .filter((p) => !filter.role || p.roles.includes(filter.role))
      .filter((p) => !filter.capability || p.capabilities.includes(filter.capability))
      .sort(byJoin);
    const page = matching
      .filter((p) => !after || p.joinedAt > after.joinedAt || (p.joinedAt.getTime() === after.joinedAt.getTime() && p.participantId > after.participantId))
      .slice(0, query.limit);
    return { participants: page, totalSize: matching.length };
  }

  async renewLease(_call: StoreCall, renewal: LeaseRenewal): Promise<Participant | null> {
    const found = this.state.participants.get(renewal.participantId);
    if (!found || found.contextId !== renewal.contextId || (renewal.agentId !== undefined && found.agentId !== renewal.agentId) || found.status !== "ACTIVE") return null;
    const renewed = { ...found, lastActivityAt: renewal.now, leaseExpiresAt: renewal.leaseExpiresAt };
    this.state.participants.set(found.participantId, renewed);
    return renewed;
  }

  readonly sweep: SweepCandidates = {
    contextsWithLapsedLeases: async (now, limit) =>
      distinctContexts([...this.state.participants.values()].filter((p) => p.status === "ACTIVE" && p.leaseExpiresAt <= now), limit),
    contextsWithExpiredParticipants: async (cutoff, limit) =>
      distinctContexts(
        [...this.state.participants.values()].filter((p) => p.status === "INACTIVE" && p.inactiveSince !== null && p.inactiveSince <= cutoff),
        limit,
      ),
    expiredContexts: async (now, limit) =>
      [...this.state.contexts.values()]
        .filter((c) => c.status !== "TERMINATED" && c.expiresAt !== null && c.expiresAt <= now)
        .slice(0, limit)
        .map((c) => c.contextId),
    contextsDueForCleanup: async (now, limit) =>
      [...this.state.contexts.values()]
        .filter(
          (c) =>
            c.status === "TERMINATED" &&
            c.configuration.autoCleanup &&
            c.terminatedAt !== null &&
            c.terminatedAt.getTime() + c.configuration.cleanupDelayMs <= now.getTime(),
        )
        .slice(0, limit)
        .map((c) => c.contextId),
    contextsToCompactAmong: async (contextIds, retention, slack) =>
      contextIds.filter((id) => {
        const c = this.state.contexts.get(id);
        return c !== undefined && c.revision - c.compactRevision > retention + slack;
      }),
    contextsToCompact: async (retention, slack, limit) =>
      [...this.state.contexts.values()]
        .filter((c) => c.revision - c.compactRevision > retention + slack)
        .slice(0, limit)
        .map((c) => c.contextId),
    purgeDeletedContextEvents: async (olderThan, limit) => {
      const doomed = new Set(
        this.state.events
          .filter((e) => !this.state.contexts.has(e.contextId) && e.occurredAt < olderThan)
          .slice(0, limit),
      );
      this.state.events = this.state.events.filter((e) => !doomed.has(e));
      return doomed.size;
    },
  };

  async heads(_call: StoreCall, contextIds: readonly string[]): Promise<Map<string, number>> {
    const heads = new Map<string, number>();
    for (const id of contextIds) {
      const c = this.state.contexts.get(id);
      if (c) heads.set(id, c.revision);
    }
    return heads;
  }

  /** Revisions of a context's stored snapshots, for assertions. */
  snapshotRevisions(contextId: string): number[] {
    return (this.state.snapshots.get(contextId) ?? []).map((s) => s.revision);
  }

  /** All events of a context, for assertions. */
  eventsOf(contextId: string): ContextEvent[] {
    return this.state.events.filter((e) => e.contextId === contextId);
  }

  /** A participant as stored, for assertions. */
  participant(participantId: string): Participant | undefined {
    return this.state.participants.get(participantId);
  }

  private tx(draft: State): ContextTx {
    return {
      lockBase: async (query, request) => {
        const prior = request === undefined ? null : this.liveKey(draft, request);
        return { base: baseOf(draft, query), prior };
      },
      finish: async (change) => {
        const outcome = this.applyTo(draft, change);
        if (!outcome.applied) throw new Error("a change decided under the lock did not apply");
        return outcome;
      },
      keepAlive: async (id, lastActivityAt, expiresAt) => {
        const found = draft.contexts.get(id);
        if (found) draft.contexts.set(id, { ...found, lastActivityAt, expiresAt });
      },
      saveStateSnapshot: async (id, revision, sharedState) => {
        const others = (draft.snapshots.get(id) ?? []).filter((s) => s.revision !== revision);
        draft.snapshots.set(id, [...others, { revision, state: stored(sharedState) }].sort((a, b) => a.revision - b.revision));
      },
      compactHistory: async (id, upTo) => {
        draft.events = draft.events.filter((e) => e.contextId !== id || e.revision > upTo);
        const snapshots = draft.snapshots.get(id) ?? [];
        const base = snapshots.filter((s) => s.revision <= upTo).pop();
        draft.snapshots.set(id, snapshots.filter((s) => base === undefined || s.revision >= base.revision));
        const found = draft.contexts.get(id);
        if (found) draft.contexts.set(id, { ...found, compactRevision: upTo });
      },
      lapsedParticipants: async (contextId, now, limit) =>
        membersOf(draft, contextId)
          .filter((p) => p.status === "ACTIVE" && p.leaseExpiresAt <= now)
          .slice(0, limit),
      expiredParticipants: async (contextId, cutoff, limit) =>
        membersOf(draft, contextId)
          .filter((p) => p.status === "INACTIVE" && p.inactiveSince !== null && p.inactiveSince <= cutoff)
          .slice(0, limit),
      latestPresence: async (contextId, now) => {
        const live = membersOf(draft, contextId).filter((p) => p.leaseExpiresAt > now);
        return live.length === 0 ? null : new Date(Math.max(...live.map((p) => p.lastActivityAt.getTime())));
      },
    };
  }
}

/** The base `query` asks for, as one statement would read it. */
function baseOf(state: State, query: BaseQuery): WriteBase | null {
  const found = state.contexts.get(query.contextId);
  if (!found) return null;
  const members = membersOf(state, query.contextId).sort(byJoin);
  const complete = members.length <= COMPLETE_UP_TO;
  const read = complete ? members : members.filter((p) => query.agents.includes(p.agentId) || p.participantId === query.participantId);
  return {
    context: query.withState ? found : withoutState(found),
    participants: new Map(read.map((p) => [p.participantId, p])),
    members: new Map(read.map((p) => [p.agentId, p])),
    complete,
    agents: new Set(query.agents),
    participantIds: new Set(query.participantId === undefined ? [] : [query.participantId]),
    cached: false,
  };
}
