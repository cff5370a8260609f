import { Histogram, Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { CountingHistogram } from "../../../src/metrics/counting-histogram.js";

const BUCKETS = [0.001, 0.01, 0.1, 1];
const VALUES = [0, 0.0005, 0.001, 0.002, 0.05, 0.1, 0.5, 2, 30];

describe(CountingHistogram.name, () => {
  it("renders exactly what a prom-client Histogram renders for the same observations", async () => {
    const ours = new Registry();
    const theirs = new Registry();
    const counting = new CountingHistogram("lag_seconds", "lag", BUCKETS, ours);
    const reference = new Histogram({ name: "lag_seconds", help: "lag", buckets: BUCKETS, registers: [theirs] });
    for (const v of VALUES) {
      counting.observe(v);
      reference.observe(v);
    }
    expect(await ours.metrics()).toBe(await theirs.metrics());
  });

  it("starts again from zero when the registry resets its metrics", async () => {
    const registry = new Registry();
    const counting = new CountingHistogram("lag_seconds", "lag", BUCKETS, registry);
    counting.observe(0.5);
    registry.resetMetrics();
    expect(await registry.metrics()).toContain("lag_seconds_count 0");
  });
});
