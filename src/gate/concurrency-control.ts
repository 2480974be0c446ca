/**
 * Who sets the concurrency limit: the configured number, or in `auto` the adaptive limiter
 * (gate/adaptive-limit.ts) ticking every ADAPTIVE_TICK_MS with what it reads — messages in flight, the
 * V8 heap against its limit, the bytes held against TORT_MAX_INFLIGHT_BYTES. A number from KV turns
 * `auto` off and sets that limit; `auto` starts a new limiter from the limit in use. Bounds
 * (`concurrency_min`, `concurrency_max`) are checked together: while the values written put the
 * minimum above the maximum, the previous bounds stay (logged); they apply once the two agree, in
 * whichever order the keys arrive.
 */
import { getHeapStatistics } from "node:v8";
import type { Logger } from "pino";
import type { LiveConfigChange, ConcurrencySetting } from "../live-config/parse-live-config.js";
import { AdaptiveLimit, DEFAULT_ADAPTIVE, type AdaptiveView } from "./adaptive-limit.js";
import type { ConcurrencyLimit } from "./concurrency-limit.js";

/** How often the limiter looks at its samples and pressures, ms: the tick timer's period. */
export const ADAPTIVE_TICK_MS = 50;

export interface ConcurrencyView extends Partial<AdaptiveView> {
  readonly mode: "auto" | "fixed";
  readonly limit: number;
  readonly min: number;
  readonly max: number;
}

export interface ConcurrencyControl {
  apply(change: Extract<LiveConfigChange, { key: "concurrency" | "concurrency_min" | "concurrency_max" }>): void;
  /** A message settled through a PubAck: its time from pull (`startedMs`) to then. */
  observe(startedMs: number, settledMs: number): void;
  /** A message left unsettled (its publish failed or timed out). */
  dropped(): void;
  view(): ConcurrencyView;
  stop(): void;
}

/** What the limiter reads at each tick; every field a function so tests can drive it. */
export interface ControlSources {
  readonly inFlight: () => number;
  readonly heldBytes: () => number;
  readonly maxBytes: number;
  /** V8's heap: used and limit (`heap_size_limit`: --max-old-space-size or the container's). */
  readonly heap?: () => { used: number; limit: number };
  readonly clock?: () => number;
}

const v8Heap = () => {
  const h = getHeapStatistics();
  return { used: h.used_heap_size, limit: h.heap_size_limit };
};

export function createConcurrencyControl(
  limit: ConcurrencyLimit,
  initial: { concurrency: ConcurrencySetting; min: number; max: number },
  sources: ControlSources,
  log: Logger,
): ConcurrencyControl {
  const clock = sources.clock ?? (() => performance.now());
  const heap = sources.heap ?? v8Heap;
  let bounds = { min: initial.min, max: initial.max };
  let adaptive: AdaptiveLimit | null = null;
  let timer: ReturnType<typeof setInterval> | undefined;

  const tick = () => {
    const h = heap();
    const next = adaptive!.tick(clock(), { inFlight: sources.inFlight(), heapUsed: h.used, heapLimit: h.limit, heldBytes: sources.heldBytes(), maxBytes: sources.maxBytes });
    if (next !== limit.limit) limit.setLimit(next);
  };
  const startAuto = () => {
    adaptive = new AdaptiveLimit({ ...DEFAULT_ADAPTIVE, ...bounds, initial: limit.limit });
    limit.setLimit(adaptive.limit);
    timer ??= setInterval(tick, ADAPTIVE_TICK_MS);
    timer.unref?.();
  };
  const stopAuto = () => {
    clearInterval(timer);
    timer = undefined;
    adaptive = null;
  };
  const setConcurrency = (value: ConcurrencySetting) => {
    if (value === "auto") {
      if (adaptive === null) startAuto();
      return;
    }
    stopAuto();
    limit.setLimit(value);
  };
  /** The bounds last written, each key's own: applied together once the minimum is not above the maximum. */
  let wanted = { ...bounds };
  const setBounds = (next: { min: number; max: number }) => {
    wanted = next;
    if (next.min > next.max) {
      log.warn({ min: next.min, max: next.max, kept: bounds }, "concurrency_min above concurrency_max: ignored until they agree; the previous bounds stay");
      return;
    }
    bounds = next;
    adaptive?.setBounds(next.min, next.max);
    if (adaptive !== null) limit.setLimit(adaptive.limit);
  };

  setConcurrency(initial.concurrency);
  return {
    apply(change) {
      if (change.key === "concurrency") setConcurrency(change.value);
      else if (change.key === "concurrency_min") setBounds({ ...wanted, min: change.value });
      else setBounds({ ...wanted, max: change.value });
    },
    observe: (startedMs, settledMs) => adaptive?.observe(startedMs, settledMs),
    dropped: () => adaptive?.dropped(),
    view() {
      const base = { limit: limit.limit, ...bounds };
      return adaptive === null ? { mode: "fixed", ...base } : { mode: "auto", ...adaptive.view(), ...base };
    },
    stop: stopAuto,
  };
}
