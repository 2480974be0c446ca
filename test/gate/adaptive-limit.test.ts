/**
 * The adaptive limit on a simulated clock: tables for each rule, properties over arbitrary inputs
 * (the limit stays an integer within its bounds, grows under no queueing, shrinks under queueing
 * and under heap or bytes pressure), and a simulated broker (Little's law: a fixed capacity and a
 * base round trip) on which it must find a limit near the best one.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { AdaptiveLimit, DEFAULT_ADAPTIVE, pressureOf, type AdaptiveSettings, type Pressure } from "../../src/gate/adaptive-limit.js";

const settings = (over: Partial<AdaptiveSettings> = {}): AdaptiveSettings => ({ ...DEFAULT_ADAPTIVE, min: 4, max: 1024, initial: 64, random: () => 0.5, ...over });
const calm = (inFlight: number): Pressure => ({ inFlight, heapUsed: 10, heapLimit: 100, heldBytes: 0, maxBytes: 100 });

/** Feed `n` round trips of `rttMs` ending at `t`, then tick at `t`. */
function step(a: AdaptiveLimit, t: number, n: number, rttMs: number, p: Pressure = calm(a.limit)): number {
  for (let i = 0; i < n; i++) a.observe(t - rttMs, t);
  return a.tick(t, p);
}

/** A limiter past its first probe, which measured `minRtt`, at time 1000; resumes at `initial`. */
function probed(minRtt: number, over: Partial<AdaptiveSettings> = {}): AdaptiveLimit {
  const a = new AdaptiveLimit(settings(over));
  a.tick(0, calm(0)); // the probe starts measuring at once: nothing in flight
  step(a, 1000, 16, minRtt, calm(4));
  return a;
}

describe("the probe", () => {
  it("starts at min, waits for in-flight work to drain to min, then measures the median and resumes at initial", () => {
    const a = new AdaptiveLimit(settings());
    expect(a.tick(0, calm(50))).toBe(4);
    // Round trips of messages pulled before the drain finished are not the minimum.
    step(a, 100, 16, 9, calm(50));
    expect(a.view().phase).toBe("probing");
    a.tick(200, calm(3));
    for (let i = 0; i < 15; i++) a.observe(201, 201 + 2);
    a.observe(202, 202 + 40); // an outlier: the median ignores it
    expect(a.tick(300, calm(4))).toBe(64);
    expect(a.view()).toMatchObject({ phase: "adapting", minRttMs: 2 });
  });

  it("ends after probeMaxMs with the samples it has, and waits without any", () => {
    const a = new AdaptiveLimit(settings({ probeMaxMs: 500 }));
    a.tick(0, calm(0));
    expect(a.tick(5_000, calm(0))).toBe(4); // no traffic: still probing
    step(a, 5_100, 2, 3, calm(1));
    expect(a.view().phase).toBe("probing");
    expect(a.tick(5_600, calm(1))).toBe(64);
  });

  it("comes back every probeEveryMs, jittered, and the limit returns to where it was", () => {
    const a = probed(5, { probeEveryMs: 10_000, random: () => 0 }); // next probe at 1000 + 9000
    let t = 1000;
    while (t < 9_900) t += 100, step(a, t, 20, 5);
    const before = a.limit;
    expect(before).toBeGreaterThan(64);
    t += 200;
    expect(step(a, t, 20, 5)).toBe(4);
    expect(a.view().phase).toBe("probing");
    t += 100;
    a.tick(t, calm(0));
    expect(step(a, t + 100, 16, 5, calm(4))).toBe(before);
  });
});

describe("a window's gradient", () => {
  // minRtt 10 → threshold 10 × 2 + 2 = 22 ms; limit 64, √64 = 8, half the way per window.
  const cases: [string, number, number][] = [
    ["round trips at the minimum: gradient 2 (its cap)", 10, 64 + 0.5 * (64 + 8)],
    ["round trips at the threshold: gradient 1, the headroom alone", 22, 64 + 0.5 * 8],
    ["round trips at 1.1 times the threshold: shrinks, no headroom", 24.2, Math.floor(64 + 0.5 * (64 / 1.1 - 64))],
    ["round trips at twice the threshold: gradient 0.5", 44, 64 - 16],
    ["round trips at ten times the threshold: still 0.5 (its floor)", 220, 64 - 16],
  ];
  it.each(cases)("%s", (_name, rtt, expected) => {
    const a = probed(10);
    expect(step(a, 1_100, 16, rtt)).toBe(expected);
    expect(a.view().sampleMs).toBeCloseTo(rtt, 9);
  });

  it("waits for windowSamples round trips, or maxWindowMs with at least one", () => {
    const a = probed(10);
    expect(step(a, 1_100, 5, 10)).toBe(64);
    expect(step(a, 1_500, 5, 10)).toBe(64);
    expect(step(a, 2_000, 0, 10)).toBeGreaterThan(64);
  });

  it("does not move while fewer than a quarter of its credits are held in flight, but for a drop", () => {
    const a = probed(10);
    expect(step(a, 1_100, 16, 10, calm(15))).toBe(64);
    expect(step(a, 1_200, 16, 44, calm(15))).toBe(64);
    a.dropped();
    expect(step(a, 1_300, 16, 10, calm(15))).toBe(48);
    expect(step(a, 1_400, 16, 44, calm(12))).toBeLessThan(48);
  });

  it("halves on a window with a timed-out publish, whatever the round trips", () => {
    const a = probed(10);
    a.dropped();
    expect(step(a, 1_100, 16, 10)).toBe(64 - 16);
  });

  it("lowers the minimum when a window's median is below it", () => {
    const a = probed(10);
    step(a, 1_100, 16, 6);
    expect(a.view().minRttMs).toBe(6);
  });

  it("keeps a window's samples bounded", () => {
    const a = probed(10);
    for (let i = 0; i < 100_000; i++) a.observe(1_050, 1_050 + 10);
    expect(step(a, 1_100, 0, 10)).toBeGreaterThan(64);
  });
});

describe("pressure", () => {
  it.each([
    [0.5, 0],
    [0.6, 0],
    [0.725, 0.5],
    [0.85, 1],
    [0.99, 1],
  ])("heap at %f of its limit is pressure %f", (fraction, expected) => {
    expect(pressureOf(fraction * 1000, 1000, DEFAULT_ADAPTIVE.heap)).toBeCloseTo(expected, 6);
  });

  it("shrinks the limit every window under heap pressure, without samples, down to min", () => {
    const a = probed(10);
    const hot: Pressure = { inFlight: 64, heapUsed: 90, heapLimit: 100, heldBytes: 0, maxBytes: 100 };
    const seen = [a.limit];
    for (let t = 1_100; t <= 2_000; t += 100) seen.push(a.tick(t, hot));
    expect(seen.slice(0, 6)).toEqual([64, 32, 16, 8, 4, 4]);
  });

  it("shrinks under held bytes near TORT_MAX_INFLIGHT_BYTES, and does not probe under pressure", () => {
    const a = probed(10, { probeEveryMs: 1_000, random: () => 0 });
    const full: Pressure = { inFlight: 64, heapUsed: 0, heapLimit: 100, heldBytes: 95, maxBytes: 100 };
    expect(a.tick(1_100, full)).toBeLessThan(64);
    expect(a.tick(5_000, full)).toBeGreaterThanOrEqual(4);
    expect(a.view().phase).toBe("adapting");
  });
});

describe("bounds", () => {
  it("setBounds brings the limit inside the new bounds at once", () => {
    const a = probed(10);
    a.setBounds(100, 200);
    expect(a.limit).toBe(100);
    a.setBounds(1, 8);
    expect(a.limit).toBe(8);
    expect(() => a.setBounds(9, 8)).toThrow(/concurrency_max/);
  });
});

// ---- properties ----

const event = fc.oneof(
  fc.record({ kind: fc.constant("observe" as const), rtt: fc.double({ min: 0, max: 5_000, noNaN: true }), count: fc.integer({ min: 1, max: 40 }) }),
  fc.record({ kind: fc.constant("drop" as const) }),
  fc.record({
    kind: fc.constant("tick" as const),
    dt: fc.integer({ min: 0, max: 3_000 }),
    inFlight: fc.integer({ min: 0, max: 5_000 }),
    heap: fc.double({ min: 0, max: 1.2, noNaN: true }),
    bytes: fc.double({ min: 0, max: 1.2, noNaN: true }),
  }),
  fc.record({ kind: fc.constant("bounds" as const), min: fc.integer({ min: 1, max: 64 }), span: fc.integer({ min: 0, max: 2_000 }) }),
);

describe("properties", () => {
  it("the limit is always an integer within its bounds, whatever happens", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 64 }), fc.integer({ min: 0, max: 4_000 }), fc.integer({ min: 1, max: 4_096 }), fc.array(event, { maxLength: 300 }), (min, span, initial, events) => {
        let bounds = { min, max: min + span };
        const a = new AdaptiveLimit(settings({ min, max: min + span, initial }));
        let t = 0;
        for (const e of events) {
          if (e.kind === "observe") for (let i = 0; i < e.count; i++) a.observe(t - e.rtt, t);
          else if (e.kind === "drop") a.dropped();
          else if (e.kind === "bounds") a.setBounds(e.min, e.min + e.span), (bounds = { min: e.min, max: e.min + e.span });
          else {
            t += e.dt;
            a.tick(t, { inFlight: e.inFlight, heapUsed: e.heap * 1000, heapLimit: 1000, heldBytes: e.bytes * 1000, maxBytes: 1000 });
          }
          expect(Number.isInteger(a.limit)).toBe(true);
          expect(a.limit).toBeGreaterThanOrEqual(bounds.min);
          expect(a.limit).toBeLessThanOrEqual(bounds.max);
        }
      }),
      { numRuns: 300 },
    );
  });

  it("grows under no queueing until max: round trips at the minimum, every credit used", () => {
    fc.assert(
      fc.property(fc.double({ min: 0.05, max: 200, noNaN: true }), fc.integer({ min: 8, max: 256 }), fc.integer({ min: 300, max: 4_096 }), (rtt, initial, max) => {
        const a = probed(rtt, { initial, max });
        let last = a.limit;
        for (let t = 1_100; t < 1_100 + 100 * 60; t += 100) {
          const next = step(a, t, 16, rtt);
          expect(next).toBeGreaterThanOrEqual(last);
          last = next;
        }
        expect(last).toBe(max);
      }),
    );
  });

  it("shrinks under queueing: round trips past twice the threshold take it down to min and never up", () => {
    fc.assert(
      fc.property(fc.double({ min: 0.05, max: 200, noNaN: true }), fc.double({ min: 2.01, max: 50, noNaN: true }), fc.integer({ min: 8, max: 1_024 }), (rtt, factor, initial) => {
        const a = probed(rtt, { initial });
        const queued = (rtt * 2 + 2) * factor;
        let last = a.limit;
        for (let t = 1_100; t < 1_100 + 100 * 40; t += 100) {
          const next = step(a, t, 16, queued);
          expect(next).toBeLessThanOrEqual(last);
          last = next;
        }
        expect(last).toBe(4);
      }),
    );
  });

  it("shrinks under heap pressure whatever the round trips say, and never grows while it lasts", () => {
    fc.assert(
      fc.property(fc.double({ min: 0.61, max: 1.5, noNaN: true }), fc.double({ min: 0.05, max: 50, noNaN: true }), fc.integer({ min: 8, max: 1_024 }), (fraction, rtt, initial) => {
        const a = probed(rtt, { initial });
        let last = a.limit;
        for (let t = 1_100; t < 1_100 + 100 * 200; t += 100) {
          const next = step(a, t, 16, rtt, { inFlight: last, heapUsed: fraction * 1e9, heapLimit: 1e9, heldBytes: 0, maxBytes: 1 });
          expect(next).toBeLessThanOrEqual(last);
          last = next;
        }
        expect(last).toBe(4);
      }),
    );
  });
});

// ---- a simulated broker ----

/**
 * A broker with a capacity (messages/s) and a base round trip: with L credits, throughput is
 * min(L / base, capacity) and a round trip takes L / throughput (Little's law: queueing once L
 * passes capacity × base). Returns the limit after a minute and the throughput and round trip there.
 */
function simulate(capacity: number, baseMs: number, over: Partial<AdaptiveSettings> = {}) {
  const a = new AdaptiveLimit(settings(over));
  let limit = a.tick(0, calm(0));
  let credit = 0;
  for (let t = 10; t <= 60_000; t += 10) {
    const throughput = Math.min(limit / (baseMs / 1000), capacity);
    const rtt = (limit / throughput) * 1000;
    credit += throughput / 100;
    const n = Math.floor(credit);
    credit -= n;
    for (let i = 0; i < n; i++) a.observe(t - rtt * (0.9 + 0.2 * ((i * 7919) % 100) / 100), t);
    limit = a.tick(t, calm(limit));
  }
  const throughput = Math.min(limit / (baseMs / 1000), capacity);
  return { limit, throughput, rttMs: (limit / throughput) * 1000 };
}

describe("on a simulated broker", () => {
  it.each([
    ["loopback: 20k/s, 0.5 ms", 20_000, 0.5],
    ["a broker 10 ms away: 20k/s", 20_000, 10],
    ["large messages: 400/s, 3 ms", 400, 3],
    ["slow and far: 2k/s, 50 ms", 2_000, 50],
  ])("%s: reaches at least 0.9x capacity with a round trip at most the threshold plus headroom", (_name, capacity, baseMs) => {
    const { throughput, rttMs, limit } = simulate(capacity, baseMs);
    expect(throughput).toBeGreaterThanOrEqual(0.9 * capacity);
    // The probe's round trip (at min, where a slow broker already queues), its threshold, and a half on top.
    const probeRtt = Math.max(baseMs, (4 / capacity) * 1000);
    expect(rttMs).toBeLessThanOrEqual((probeRtt * 2 + 2) * 1.5);
    expect(limit).toBeLessThan(1024);
  });
});
