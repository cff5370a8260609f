/**
 * The operations the driver measures, with the seed's published figures beside each (from
 * ../shared/SEED-FIGURES.md) and issue 7's targets: P95 at the seed's rate ≤ one tenth of the
 * seed's P95, and maximum throughput ≥ 3× the seed's or ≥ 70% of the bare grpc-js ceiling of the
 * same run where that is lower.
 */

/** What data a scenario needs before it runs (see seed-data.ts). */
export type SeedKind =
  /** Nothing beyond a pool of contexts to list. */
  | "none"
  /** A pool of contexts with a few members each, used round-robin. */
  | "contexts"
  /** One context id per request, each deleted by it. */
  | "fresh-contexts"
  /** Free member slots: one context id per request, each adding a member to it. */
  | "slots"
  /** Members used round-robin (update participant). */
  | "participants"
  /** One member per request, each removed by it. */
  | "fresh-participants";

export interface SeedFigures {
  readonly p50Ms: number;
  readonly p95Ms: number;
  readonly p99Ms: number;
  readonly rps: number;
}

export interface Operation {
  /** The config file bench/ghz/<name>.json and the scenario's name. */
  readonly name: string;
  /** The seed's name for it. */
  readonly seedName: string;
  readonly seed: SeedFigures | undefined;
  /** Open-loop rate: the seed's throughput (the config's `rps`). */
  readonly rate: number;
  /** Our P95 target in ms. */
  readonly targetP95Ms: number;
  readonly seedKind: SeedKind;
}

const op = (name: string, seedName: string, seed: SeedFigures | undefined, rate: number, seedKind: SeedKind, targetP95Ms = (seed?.p95Ms ?? 0) / 10): Operation => ({
  name,
  seedName,
  seed,
  rate,
  targetP95Ms,
  seedKind,
});

export const OPERATIONS: readonly Operation[] = [
  op("create-context", "create_context", { p50Ms: 25, p95Ms: 85, p99Ms: 150, rps: 500 }, 500, "none"),
  op("get-context", "get_context", { p50Ms: 8, p95Ms: 25, p99Ms: 45, rps: 2000 }, 2000, "contexts"),
  op("update-context", "update_context", { p50Ms: 35, p95Ms: 95, p99Ms: 180, rps: 400 }, 400, "contexts"),
  op("delete-context", "delete_context", { p50Ms: 45, p95Ms: 120, p99Ms: 220, rps: 300 }, 300, "fresh-contexts"),
  op("list-contexts", "list_contexts", { p50Ms: 15, p95Ms: 55, p99Ms: 95, rps: 800 }, 800, "none"),
  op("add-participant", "add_participant", { p50Ms: 20, p95Ms: 65, p99Ms: 120, rps: 600 }, 600, "slots"),
  op("remove-participant", "remove_participant", { p50Ms: 25, p95Ms: 75, p99Ms: 140, rps: 500 }, 500, "fresh-participants"),
  op("update-participant", "update_participant", { p50Ms: 18, p95Ms: 55, p99Ms: 100, rps: 700 }, 700, "participants"),
  op("list-participants", "list_participants", { p50Ms: 12, p95Ms: 40, p99Ms: 75, rps: 1000 }, 1000, "contexts"),
  // The seed gives no per-operation figures for state calls, only "state synchronization P95 <
  // 200 ms"; we hold them to a tenth of that, at rates of our choosing.
  op("update-shared-state", "(state sync)", undefined, 1000, "contexts", 20),
  op("get-shared-state", "(state sync)", undefined, 2000, "contexts", 20),
];

/** Issue 7's throughput target: 3× the seed's, or 70% of the echo ceiling where that is lower. */
export function throughputTarget(operation: Operation, echoRps: number | undefined): number | undefined {
  if (operation.seed === undefined) return undefined;
  const triple = 3 * operation.seed.rps;
  return echoRps === undefined ? triple : Math.min(triple, 0.7 * echoRps);
}
