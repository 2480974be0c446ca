import fc from "fast-check";
import { Histogram, Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { createBucketHistogram } from "../../src/ops/bucket-histogram.js";

const buckets = [1e-6, 5e-6, 1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 1e-2];

describe("bucket histogram", () => {
  it("is exposed exactly as prom-client's Histogram after the same observations (text and JSON)", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.oneof(fc.constantFrom(...buckets, 0, 1e9), fc.double({ min: 0, max: 0.05, noNaN: true })), { maxLength: 200 }),
        fc.boolean(),
        async (values, reset) => {
          const theirs = new Registry();
          const ours = new Registry();
          const reference = new Histogram({ name: "t_seconds", help: "a time", buckets, registers: [theirs] });
          const candidate = createBucketHistogram({ name: "t_seconds", help: "a time", buckets, registers: [ours] });
          for (const v of values) {
            reference.observe(v);
            candidate.observe(v);
          }
          if (reset) {
            theirs.resetMetrics();
            ours.resetMetrics();
            reference.observe(0.002);
            candidate.observe(0.002);
          }
          expect(await ours.metrics()).toBe(await theirs.metrics());
          expect(await ours.getMetricsAsJSON()).toEqual(await theirs.getMetricsAsJSON());
        },
      ),
      { numRuns: 200 },
    );
  });

  it("refuses a value that is not a finite number, as prom-client does", () => {
    const h = createBucketHistogram({ name: "u_seconds", help: "a time", buckets, registers: [new Registry()] });
    expect(() => h.observe(Number.NaN)).toThrow(TypeError);
    expect(() => h.observe(Number.POSITIVE_INFINITY)).toThrow(TypeError);
  });
});
