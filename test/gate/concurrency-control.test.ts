/**
 * The concurrency control: a number or `auto`, switched live; bounds checked together; the
 * adaptive limiter driven by what it reads (here a fake heap and clock, a real ConcurrencyLimit).
 */
import pino from "pino";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ADAPTIVE_TICK_MS, createConcurrencyControl } from "../../src/gate/concurrency-control.js";
import { createConcurrencyLimit } from "../../src/gate/concurrency-limit.js";

const log = pino({ level: "silent" });

afterEach(() => vi.useRealTimers());

function control(concurrency: number | "auto", heapUsed = { value: 10 }) {
  vi.useFakeTimers();
  const limit = createConcurrencyLimit(64);
  let inFlight = 0;
  const c = createConcurrencyControl(limit, { concurrency, min: 4, max: 1024 }, {
    inFlight: () => inFlight,
    heldBytes: () => 0,
    maxBytes: 100,
    heap: () => ({ used: heapUsed.value, limit: 100 }),
    clock: () => Date.now(),
  }, log);
  /** `n` settled round trips of `ms` each, every credit in use, over `windows` windows of the limiter. */
  const traffic = (ms: number, windows: number) => {
    for (let w = 0; w < windows; w++) {
      inFlight = limit.limit;
      for (let i = 0; i < 20; i++) c.observe(Date.now() - ms, Date.now());
      vi.advanceTimersByTime(2 * ADAPTIVE_TICK_MS);
    }
  };
  return { c, limit, traffic, setInFlight: (n: number) => (inFlight = n) };
}

describe("the concurrency control", () => {
  it("a number sets the limit and nothing else moves it", () => {
    const { c, limit, traffic } = control(32);
    expect(limit.limit).toBe(32);
    traffic(1, 20);
    expect(limit.limit).toBe(32);
    expect(c.view()).toEqual({ mode: "fixed", limit: 32, min: 4, max: 1024 });
  });

  it("`auto` probes at min, then grows while round trips stay at the minimum; a number turns it off; `auto` again starts from the limit in use", () => {
    const { c, limit, traffic, setInFlight } = control("auto");
    expect(limit.limit).toBe(4);
    setInFlight(0);
    vi.advanceTimersByTime(ADAPTIVE_TICK_MS);
    traffic(2, 2);
    expect(c.view()).toMatchObject({ mode: "auto", phase: "adapting", minRttMs: 2 });
    const before = limit.limit;
    traffic(2, 10);
    expect(limit.limit).toBeGreaterThan(before);
    c.apply({ key: "concurrency", value: 100 });
    expect(c.view()).toEqual({ mode: "fixed", limit: 100, min: 4, max: 1024 });
    traffic(50, 10);
    expect(limit.limit).toBe(100);
    c.apply({ key: "concurrency", value: "auto" });
    expect(c.view().mode).toBe("auto");
  });

  it("refuses bounds with the minimum above the maximum and keeps the previous ones; good bounds apply at once", () => {
    const { c, limit } = control("auto");
    c.apply({ key: "concurrency_min", value: 2000 });
    expect(c.view()).toMatchObject({ min: 4, max: 1024 });
    // The two agree once the maximum arrives (the KV watch delivers keys in revision order).
    c.apply({ key: "concurrency_max", value: 3000 });
    expect(c.view()).toMatchObject({ min: 2000, max: 3000 });
    c.apply({ key: "concurrency_max", value: 2 });
    expect(c.view()).toMatchObject({ min: 2000, max: 3000 });
    c.apply({ key: "concurrency_min", value: 1 });
    expect(c.view()).toMatchObject({ min: 1, max: 2 });
    c.apply({ key: "concurrency_max", value: 1024 });
    c.apply({ key: "concurrency_min", value: 8 });
    expect(c.view()).toMatchObject({ min: 8, max: 1024 });
    expect(limit.limit).toBe(8); // probing at the new min
  });

  it("shrinks under heap pressure read from the heap, without a settled message", () => {
    const heap = { value: 10 };
    const { c, limit, traffic, setInFlight } = control("auto", heap);
    setInFlight(0);
    vi.advanceTimersByTime(ADAPTIVE_TICK_MS);
    traffic(2, 30);
    const grown = limit.limit;
    expect(grown).toBeGreaterThan(64);
    heap.value = 90;
    vi.advanceTimersByTime(10 * ADAPTIVE_TICK_MS);
    expect(limit.limit).toBeLessThan(grown / 2);
    expect(c.view().pressure).toBe(1);
  });
});
