/**
 * The ContextStore with the read cache in front (CACHE_ENABLED, the default): GetContext (both
 * views), the READ check's membership lookup, GetParticipant, the first page of ListParticipants
 * and GetContextStatistics read through the cache; everything else, and every transaction, goes
 * straight to the store. Cached reads always load from the primary (never `replicaOk`): a copy
 * that outlives a lagging replica's answer would break read-your-writes.
 *
 * Invalidation: commits arrive through `committed()` (the app calls it from the store's onCommit);
 * writes that change what a read returns without a new revision — a lease renewal, a compaction,
 * a context kept alive by the sweeper — touch the context after they commit.
 */
import { contextFromJson, participantFromJson, participantsFromJson } from "../domain/context-codec.js";
import type { Context } from "../domain/context.js";
import type { JsonObject } from "../domain/json.js";
import type { Participant } from "../domain/participant.js";
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
  StatisticsGroup,
  StoreCall,
  StoredResult,
  SweepCandidates,
  WriteBase,
} from "./ports.js";
import type { CachedRead, ReadCache } from "./read-cache.js";

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
 * alive): they are touched once it committed. Changes it finishes are revisions: committed() hears them.
 */
function noting(tx: ContextTx, touched: Set<string>): ContextTx {
  return {
    lockBase: (query, request) => tx.lockBase(query, request),
    finish: (change) => tx.finish(change),
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

export class CachedContextStore implements ContextStore {
  readonly sweep: SweepCandidates;

  constructor(
    private readonly store: ContextStore,
    private readonly cache: ReadCache,
    private readonly ttls: CacheTtls,
  ) {
    this.sweep = store.sweep;
  }

  /** The app's onCommit hook: `contextId` reached `revision` through this instance. */
  committed(contextId: string, revision: number): void {
    this.cache.committed(contextId, revision);
  }

  async transaction<T>(call: StoreCall, work: (tx: ContextTx) => Promise<T>): Promise<T> {
    const touched = new Set<string>();
    const result = await this.store.transaction(primary(call), (tx) => work(noting(tx, touched)));
    for (const contextId of touched) await this.cache.touch(contextId);
    return result;
  }

  // A write's base decides it, so it is read from the primary; the change reaches the cache through
  // committed() (the store's onCommit), before the write answers.

  loadBase(call: StoreCall, query: BaseQuery): Promise<WriteBase | null> {
    return this.store.loadBase(primary(call), query);
  }

  apply(call: StoreCall, change: ContextChange): Promise<ApplyOutcome> {
    return this.store.apply(call, change);
  }

  applyAll(call: StoreCall, changes: readonly ContextChange[]): Promise<ApplyOutcome[]> {
    return this.store.applyAll(call, changes);
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

  listContexts(call: StoreCall, query: ContextListQuery): Promise<ContextListResult> {
    return this.store.listContexts(call, query);
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
