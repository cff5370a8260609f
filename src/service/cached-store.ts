/**
 * The ContextStore with the read cache in front (CACHE_ENABLED, the default): GetContext (both
 * views), the READ check's membership lookup, GetParticipant, the first page of ListParticipants
 * and GetContextStatistics read through the cache; everything else, and every transaction, goes
 * straight to the store. Cached reads always load from the primary (never `replicaOk`): a copy
 * that outlives a lagging replica's answer would break read-your-writes.
 *
 * ListContexts' first pages are kept between revisions (list-pages.ts).
 *
 * Write bases (ports.ts WriteBase): after each write of this instance applies, the base it leaves
 * (write-base.ts) is kept in memory, so the next write to the context is decided without reading
 * it: one round trip instead of two. A kept base is only ever a guess — the write applies only if
 * the context is still at its revision, and a refusal decided on it is confirmed under the lock
 * (writes.ts) — so it is dropped when another instance's revision is heard, or a write finds it stale.
 *
 * Invalidation: commits arrive through `committed()` (the app calls it from the store's onCommit);
 * writes that change what a read returns without a new revision — a lease renewal, a compaction,
 * a context kept alive by the sweeper — touch the context after they commit.
 */
import { contextFromJson, participantFromJson, participantsFromJson } from "../domain/context-codec.js";
import type { Context } from "../domain/context.js";
import type { JsonObject } from "../domain/json.js";
import type { Participant } from "../domain/participant.js";
import {
  ALL_CONTEXTS,
  type ApplyOutcome,
  type BaseQuery,
  type ContextChange,
  type ContextListQuery,
  type ContextListResult,
  type ContextStore,
  type ContextTx,
  type LeaseRenewal,
  type LocalCache,
  type ParticipantListQuery,
  type ParticipantListResult,
  type RequestKey,
  type StateHistory,
  type StatisticsGroup,
  type StoreCall,
  type StoredResult,
  type SweepCandidates,
  type WriteBase,
} from "./ports.js";
import type { CachedRead, ReadCache } from "./read-cache.js";
import { ListPages } from "./list-pages.js";
import { baseAfter, covers } from "./write-base.js";

export interface CacheTtls {
  /** Contexts, memberships, participants and participant lists in the L2. */
  readonly entryMs: number;
  /** Statistics, in both levels: they depend on many contexts, so no single revision invalidates them. */
  readonly statisticsMs: number;
}

/** The keys of a context's two views: named, so a change deletes them outright. */
export function contextViewKeys(contextId: string): readonly string[] {
  return [`c:${contextId}:basic`, `c:${contextId}:full`];
}

/**
 * `tx`, noting the contexts whose reads it changed without a revision (a compaction, a context kept
 * alive): they are touched once it committed. Changes it finishes are revisions (committed() hears
 * them); `finished` keeps the base each leaves.
 */
function noting(tx: ContextTx, touched: Set<string>, finished: (change: ContextChange, outcome: ApplyOutcome) => void): ContextTx {
  return {
    lockBase: (query, request) => tx.lockBase(query, request),
    finish: async (change) => {
      const outcome = await tx.finish(change);
      finished(change, outcome);
      return outcome;
    },
    keepAlive: async (contextId, lastActivityAt, expiresAt) => {
      touched.add(contextId);
      await tx.keepAlive(contextId, lastActivityAt, expiresAt);
    },
    saveStateSnapshot: (contextId, revision, state) => tx.saveStateSnapshot(contextId, revision, state),
    compactHistory: async (contextId, upTo) => {
      touched.add(contextId);
      await tx.compactHistory(contextId, upTo);
    },
    lapsedParticipants: (contextId, now, limit) => tx.lapsedParticipants(contextId, now, limit),
    expiredParticipants: (contextId, cutoff, limit) => tx.expiredParticipants(contextId, cutoff, limit),
    latestPresence: (contextId, now) => tx.latestPresence(contextId, now),
  };
}

function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : 1));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

/**
 * What a kept base weighs against its byte bound: measured on the V8 heap (a context with its
 * nested objects and dates, the base's maps, a participant), rounded up; a shared state counts
 * twice its JSON size (objects on the heap are bigger than their JSON).
 */
const BASE_BYTES = 6 * 1024;
const PARTICIPANT_BYTES = 2 * 1024;

export interface KeptBase {
  readonly base: WriteBase;
  /** Its shared state's size, when it holds one (0: unknown or none). */
  readonly stateBytes: number;
}

export class CachedContextStore implements ContextStore {
  readonly sweep: SweepCandidates;
  private readonly firstPages = new ListPages();

  constructor(
    private readonly store: ContextStore,
    private readonly cache: ReadCache,
    private readonly ttls: CacheTtls,
    /** Bases kept from this instance's writes, by context id. */
    private readonly bases: LocalCache<KeptBase>,
  ) {
    this.sweep = store.sweep;
  }

  /** The app's onCommit hook: `contextId` reached `revision` through this instance. */
  committed(contextId: string, revision: number): void {
    this.firstPages.revised();
    this.cache.committed(contextId, revision);
  }

  /** A revision heard on the doorbell (any instance's): a kept base older than it is stale. */
  heard(contextId: string, revision: number): void {
    this.firstPages.revised();
    if (contextId === ALL_CONTEXTS) this.bases.clear();
    const kept = this.bases.get(contextId);
    if (kept !== undefined && kept.base.context.revision < revision) this.bases.delete(contextId);
  }

  private keep(change: ContextChange, outcome: ApplyOutcome): void {
    if (!outcome.applied) {
      this.bases.delete(change.contextId);
      return;
    }
    const next = baseAfter(change, outcome);
    if (next === null) {
      this.bases.delete(change.contextId);
      return;
    }
    const prior = this.bases.get(change.contextId);
    const stateBytes = next.context.sharedState === undefined ? 0 : (change.stateBytes ?? prior?.stateBytes ?? 0);
    this.bases.set(change.contextId, { base: next, stateBytes }, BASE_BYTES + PARTICIPANT_BYTES * next.participants.size + 2 * stateBytes);
  }

  async transaction<T>(call: StoreCall, work: (tx: ContextTx) => Promise<T>): Promise<T> {
    const touched = new Set<string>();
    const result = await this.store.transaction(primary(call), (tx) =>
      work(
        noting(tx, touched, (change, outcome) => {
          this.keep(change, outcome);
        }),
      ),
    );
    // A context kept alive moved its expiry without a revision: a kept first page may show the old one.
    if (touched.size > 0) this.firstPages.revised();
    for (const contextId of touched) await this.cache.touch(contextId);
    return result;
  }

  // A write's base decides it, so a base not kept is read from the primary; the change reaches the
  // read cache through committed() (the store's onCommit), before the write answers.

  async loadBase(call: StoreCall, query: BaseQuery): Promise<WriteBase | null> {
    const kept = this.bases.get(query.contextId);
    if (kept !== undefined && covers(kept.base, query)) return kept.base;
    return this.store.loadBase(primary(call), query);
  }

  async apply(call: StoreCall, change: ContextChange): Promise<ApplyOutcome> {
    const outcome = await this.store.apply(call, change);
    this.keep(change, outcome);
    return outcome;
  }

  async applyAll(call: StoreCall, changes: readonly ContextChange[]): Promise<ApplyOutcome[]> {
    const outcomes = await this.store.applyAll(call, changes);
    changes.forEach((change, i) => this.keep(change, outcomes[i]!));
    return outcomes;
  }

  storedResult(call: StoreCall, key: RequestKey): Promise<StoredResult | null> {
    return this.store.storedResult(primary(call), key);
  }

  stateHistory(call: StoreCall, contextId: string, revision: number): Promise<StateHistory | null> {
    return this.store.stateHistory(call, contextId, revision);
  }

  getContext(call: StoreCall, contextId: string, options: { readonly withState: boolean }): Promise<Context | null> {
    const [basic, full] = contextViewKeys(contextId) as [string, string];
    const read: CachedRead<Context | null> = {
      scope: contextId,
      key: options.withState ? full : basic,
      ttlMs: this.ttls.entryMs,
      revisionOf: (c) => c?.revision ?? 0,
      cacheable: (c) => c !== null,
      // Dates become ISO strings, which the codec reads back.
      encode: (c) => JSON.stringify(c),
      decode: (p) => contextFromJson(JSON.parse(p) as JsonObject),
    };
    return this.cache.read(read, () => this.store.getContext(primary(call), contextId, options));
  }

  findMember(call: StoreCall, contextId: string, agentId: string): Promise<Participant | null> {
    return this.cache.read(this.participantRead(contextId, `m:${contextId}:${agentId}`), () =>
      this.store.findMember(primary(call), contextId, agentId),
    );
  }

  getParticipant(call: StoreCall, contextId: string, participantId: string): Promise<Participant | null> {
    return this.cache.read(this.participantRead(contextId, `p:${contextId}:${participantId}`), () =>
      this.store.getParticipant(primary(call), contextId, participantId),
    );
  }

  listParticipants(call: StoreCall, query: ParticipantListQuery): Promise<ParticipantListResult> {
    // Later pages go to the store (and may go to a replica): only first pages are read often.
    if (query.after !== undefined) return this.store.listParticipants(call, query);
    const read: CachedRead<ParticipantListResult> = {
      scope: query.contextId,
      key: `l:${query.contextId}:${query.limit}:${stableJson(query.filter)}`,
      ttlMs: this.ttls.entryMs,
      encode: (r) => JSON.stringify({ totalSize: r.totalSize, items: r.participants }),
      decode: (p) => {
        const parsed = JSON.parse(p) as JsonObject & { totalSize: number };
        return { totalSize: parsed.totalSize, participants: participantsFromJson(parsed) };
      },
    };
    return this.cache.read(read, () => this.store.listParticipants(primary(call), query));
  }

  contextStatistics(call: StoreCall, principal: string): Promise<StatisticsGroup[]> {
    const read: CachedRead<StatisticsGroup[]> = {
      scope: null,
      key: `s:${principal}`,
      ttlMs: this.ttls.statisticsMs,
      encode: (groups) => JSON.stringify(groups),
      decode: (p) => JSON.parse(p) as StatisticsGroup[],
    };
    return this.cache.read(read, () => this.store.contextStatistics(call, principal));
  }

  async renewLease(call: StoreCall, renewal: LeaseRenewal): Promise<Participant | null> {
    const renewed = await this.store.renewLease(call, renewal);
    if (renewed !== null) await this.cache.touch(renewal.contextId);
    return renewed;
  }

  /** A first page comes from `firstPages` while no revision happened since it was read (list-pages.ts). */
  async listContexts(call: StoreCall, query: ContextListQuery): Promise<ContextListResult> {
    if (query.count === false || query.after !== undefined) return this.store.listContexts(call, query);
    const key = `${query.principal}\u0000${query.limit}\u0000${JSON.stringify(query.count ?? null)}\u0000${stableJson(query.filter)}`;
    return this.firstPages.load(key, () => this.store.listContexts(call, query));
  }

  listEvents(...args: Parameters<ContextStore["listEvents"]>): ReturnType<ContextStore["listEvents"]> {
    return this.store.listEvents(...args);
  }

  heads(...args: Parameters<ContextStore["heads"]>): ReturnType<ContextStore["heads"]> {
    return this.store.heads(...args);
  }

  private participantRead(contextId: string, key: string): CachedRead<Participant | null> {
    return {
      scope: contextId,
      key,
      ttlMs: this.ttls.entryMs,
      encode: (p) => JSON.stringify(p),
      decode: (p) => {
        const parsed = JSON.parse(p) as JsonObject | null;
        return parsed === null ? null : participantFromJson(parsed);
      },
    };
  }
}

/** A cached read's load: always the primary (see the file comment). */
function primary(call: StoreCall): StoreCall {
  if (call.replicaOk !== true) return call;
  const { replicaOk: _dropped, ...rest } = call;
  return rest;
}
