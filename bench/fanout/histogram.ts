/**
 * Latency histograms in microseconds (HDR, 3 significant digits): one per worker thread, shipped
 * to the main thread as compressed base64 and merged there, so percentiles are exact over every
 * delivery rather than averages of per-worker percentiles.
 */
import { build, decodeFromCompressedBase64, encodeIntoCompressedBase64, type Histogram } from "hdr-histogram-js";

/** Highest latency tracked: a minute, far past anything a healthy run sees. */
const HIGHEST_US = 60_000_000;

/** An empty µs histogram. Plain JS (no WebAssembly): several live in every worker thread. */
export function newHistogram(): Histogram {
  return build({ lowestDiscernibleValue: 1, highestTrackableValue: HIGHEST_US, numberOfSignificantValueDigits: 3, autoResize: false });
}

/** Records a latency given in (fractional) milliseconds; values below 1 µs count as 1 µs, above the range as its top. */
export function recordMs(histogram: Histogram, ms: number): void {
  const us = Math.round(ms * 1000);
  histogram.recordValue(Math.min(HIGHEST_US, Math.max(1, us)));
}

/** The histogram as a string that crosses thread boundaries (and can be kept in the JSON report). */
export function encodeHistogram(histogram: Histogram): string {
  return encodeIntoCompressedBase64(histogram);
}

/** Merges encoded histograms (from several workers) into one. */
export function mergeHistograms(encoded: readonly string[]): Histogram {
  const merged = newHistogram();
  for (const item of encoded) {
    const part = decodeFromCompressedBase64(item, 32, false);
    merged.add(part);
    part.destroy();
  }
  return merged;
}

/** Percentiles and extremes of a µs histogram, in milliseconds (the unit the targets use). */
export interface LatencySummary {
  readonly count: number;
  readonly meanMs: number;
  readonly minMs: number;
  readonly p50Ms: number;
  readonly p95Ms: number;
  readonly p99Ms: number;
  readonly p999Ms: number;
  readonly maxMs: number;
}

export function summarize(histogram: Histogram): LatencySummary {
  const ms = (us: number): number => Math.round(us) / 1000;
  const empty = histogram.totalCount === 0;
  return {
    count: histogram.totalCount,
    meanMs: empty ? 0 : ms(histogram.mean),
    minMs: empty ? 0 : ms(histogram.minNonZeroValue),
    p50Ms: ms(histogram.getValueAtPercentile(50)),
    p95Ms: ms(histogram.getValueAtPercentile(95)),
    p99Ms: ms(histogram.getValueAtPercentile(99)),
    p999Ms: ms(histogram.getValueAtPercentile(99.9)),
    maxMs: ms(histogram.maxValue),
  };
}

/**
 * The latency part of a ghz JSON report (integer nanoseconds), so this benchmark's output reads
 * like the rest of bench/ (issue 7): count, average, fastest, slowest, latencyDistribution — with
 * 99.9 added, as the driver there adds it.
 */
export function ghzLatency(histogram: Histogram): {
  count: number;
  average: number;
  fastest: number;
  slowest: number;
  latencyDistribution: Array<{ percentage: number; latency: number }>;
} {
  const ns = (us: number): number => Math.round(us * 1000);
  const empty = histogram.totalCount === 0;
  return {
    count: histogram.totalCount,
    average: empty ? 0 : ns(histogram.mean),
    fastest: empty ? 0 : ns(histogram.minNonZeroValue),
    slowest: ns(histogram.maxValue),
    latencyDistribution: [10, 25, 50, 75, 90, 95, 99, 99.9].map((percentage) => ({ percentage, latency: ns(histogram.getValueAtPercentile(percentage)) })),
  };
}
