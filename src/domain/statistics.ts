/** GetContextStatistics' figures, folded from per-group counts. */
import {
  CONTEXT_STATUSES,
  CONTEXT_TYPES,
  LIFECYCLE_STAGES,
  type ContextStatus,
  type ContextType,
  type LifecycleStage,
} from "./context.js";

export interface ContextStatistics {
  readonly totalContexts: number;
  readonly byStatus: Readonly<Record<ContextStatus, number>>;
  readonly byStage: Readonly<Record<LifecycleStage, number>>;
  readonly byType: Readonly<Record<ContextType, number>>;
  readonly totalParticipants: number;
  readonly avgParticipants: number;
  readonly maxParticipants: number;
  readonly computedAt: Date;
}

/** The contexts sharing one status, stage and type. */
export interface StatisticsGroup {
  readonly status: ContextStatus;
  readonly lifecycleStage: LifecycleStage;
  readonly type: ContextType;
  readonly contexts: number;
  readonly participants: number;
  readonly maxParticipants: number;
}

function zeros<K extends string>(keys: readonly K[]): Record<K, number> {
  return Object.fromEntries(keys.map((k) => [k, 0])) as Record<K, number>;
}

export function foldStatistics(groups: readonly StatisticsGroup[], computedAt: Date): ContextStatistics {
  const byStatus = zeros(CONTEXT_STATUSES);
  const byStage = zeros(LIFECYCLE_STAGES);
  const byType = zeros(CONTEXT_TYPES);
  let totalContexts = 0;
  let totalParticipants = 0;
  let maxParticipants = 0;
  for (const g of groups) {
    byStatus[g.status] += g.contexts;
    byStage[g.lifecycleStage] += g.contexts;
    byType[g.type] += g.contexts;
    totalContexts += g.contexts;
    totalParticipants += g.participants;
    maxParticipants = Math.max(maxParticipants, g.maxParticipants);
  }
  const avgParticipants = totalContexts === 0 ? 0 : totalParticipants / totalContexts;
  return { totalContexts, byStatus, byStage, byType, totalParticipants, avgParticipants, maxParticipants, computedAt };
}
