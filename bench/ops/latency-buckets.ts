/**
 * Log-spaced latency buckets (√2 apart from 50 µs up to ~50 s) for ghz's `histogram` field. ghz
 * spaces its marks linearly between fastest and slowest, which needs both before counting; fixed
 * log buckets can be filled by each worker and added up, and show a long tail better.
 */

const FIRST_MS = 0.05;
export const BUCKETS = 42;

/** The bucket of a latency in ms: the first whose upper mark is ≥ it (the last catches the rest). */
export function bucketOf(ms: number): number {
  if (ms <= FIRST_MS) return 0;
  return Math.min(BUCKETS - 1, Math.ceil(2 * Math.log2(ms / FIRST_MS)));
}

/** The upper mark of bucket k, in seconds (ghz's `mark` unit). */
export function markSeconds(k: number): number {
  return (FIRST_MS * 2 ** (k / 2)) / 1000;
}
