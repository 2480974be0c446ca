/**
 * The adaptive concurrency limit (spec section 13), pure: no timer, no clock, no I/O. The caller
 * reports each settled message's time from pull to PubAck (`observe`), each publish that timed out
 * (`dropped`), and calls `tick` a few times a second with the time and the pressures it reads (in
 * flight, V8 heap, held message bytes); `tick` answers the limit to use.
 *
 * How, after Envoy's adaptive concurrency filter and Netflix's Gradient2:
 * - a **probe** measures the minimum round trip: the limit drops to `min`, the messages already in
 *   flight settle, and the median of the next `probeSamples` round trips is the new minimum. One at
 *   start, then every `probeEveryMs` (± 10 % so that a fleet does not probe in step), never under
 *   memory pressure. Between probes a window's median below the minimum lowers it.
 * - every **window** (at least `windowMs` and `windowSamples` round trips) the limit moves by the
 *   gradient: `threshold / median`, where the threshold is the minimum times `1 + tolerance` plus
 *   `slackMs` (the event loop's jitter), clamped to 0.5..2, plus a headroom of √limit when it is
 *   at least 1; the move is smoothed (`smoothing` of the way). It grows while round trips stay near the minimum and shrinks
 *   when they grow (queueing). It does not move while fewer than a quarter of its credits are held
 *   by messages in flight (the limit did not bind: nothing to learn of it), and a window with a
 *   timed-out publish halves it.
 * - **pressure**: as the heap's used bytes pass `heap.soft` of its limit (V8's `heap_size_limit`:
 *   `--max-old-space-size` or the container's), or the bytes of messages held pass `bytes.soft`
 *   of `TORT_MAX_INFLIGHT_BYTES`, the limit shrinks at every window by up to half (all the way at
 *   `hard`) and does not grow; no sample is needed, so a burst of large messages is slowed even
 *   when nothing settles.
 * The limit is always an integer within `min..max`.
 */

export interface PressureLevels {
  /** Fraction of the limit where shrinking starts. */
  readonly soft: number;
  /** Fraction where the limit halves at every window. */
  readonly hard: number;
}

export interface AdaptiveSettings {
  readonly min: number;
  readonly max: number;
  /** Where the limit goes back to after the first probe. */
  readonly initial: number;
  /** A window lasts at least this long, ms… */
  readonly windowMs: number;
  /** …and until it holds this many round trips (or `maxWindowMs` has passed with at least one). */
  readonly windowSamples: number;
  readonly maxWindowMs: number;
  /** Round trips up to minimum × (1 + tolerance) + slack count as no queueing. */
  readonly tolerance: number;
  readonly slackMs: number;
  /** Fraction of the way to the gradient's target taken per window (0..1]. */
  readonly smoothing: number;
  /** Time between probes of the minimum round trip, ms (± 10 %). */
  readonly probeEveryMs: number;
  /** Round trips a probe takes the median of. */
  readonly probeSamples: number;
  /** Longest a probe measures; it ends then with the samples it has (at least one). */
  readonly probeMaxMs: number;
  readonly heap: PressureLevels;
  readonly bytes: PressureLevels;
  /** [0, 1): jitter of the probe period (tests pass a fixed one). */
  readonly random: () => number;
}

export const DEFAULT_ADAPTIVE: Omit<AdaptiveSettings, "min" | "max" | "initial"> = {
  windowMs: 100,
  windowSamples: 16,
  maxWindowMs: 1_000,
  tolerance: 1,
  slackMs: 2,
  smoothing: 0.5,
  probeEveryMs: 60_000,
  probeSamples: 16,
  probeMaxMs: 2_000,
  heap: { soft: 0.6, hard: 0.85 },
  bytes: { soft: 0.75, hard: 1 },
  random: Math.random,
};

/** What the limiter reads at each tick. */
export interface Pressure {
  /** Messages between pull and settlement now. */
  readonly inFlight: number;
  readonly heapUsed: number;
  readonly heapLimit: number;
  /** Bytes of the messages between pull and settlement, and their cap (TORT_MAX_INFLIGHT_BYTES). */
  readonly heldBytes: number;
  readonly maxBytes: number;
}

export type AdaptivePhase = "probing" | "adapting";

export interface AdaptiveView {
  readonly limit: number;
  readonly phase: AdaptivePhase;
  /** The measured minimum round trip, ms (null until the first probe has ended). */
  readonly minRttMs: number | null;
  /** The last window's median round trip, ms. */
  readonly sampleMs: number | null;
  /** 0..1: the larger of heap and bytes pressure at the last tick. */
  readonly pressure: number;
}

/** Most round trips a window keeps (the newest replace the oldest): the sample buffer's bound. */
export const MAX_WINDOW_SAMPLES = 2_048;

const median = (values: readonly number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

const clamp = (x: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, x));

/** 0 below `soft`, 1 at `hard` and above, linear between. */
export const pressureOf = (used: number, limit: number, levels: PressureLevels) =>
  limit > 0 ? clamp((used / limit - levels.soft) / (levels.hard - levels.soft), 0, 1) : 0;

function validateAdaptiveSettings(s: Pick<AdaptiveSettings, "min" | "max">): void {
  if (!Number.isInteger(s.min) || s.min < 1) throw new RangeError(`concurrency_min must be a positive integer, got ${s.min}`);
  if (!Number.isInteger(s.max) || s.max < s.min) throw new RangeError(`concurrency_max must be an integer >= concurrency_min (${s.min}), got ${s.max}`);
}

export class AdaptiveLimit {
  private s: AdaptiveSettings;
  private current: number;
  private phase: AdaptivePhase = "probing";
  private minRtt: number | null = null;
  private lastSample: number | null = null;
  private lastPressure = 0;
  /** The limit to return to after a probe. */
  private resumeAt: number;
  /** Probe: when it began measuring (null while in-flight messages drain to `min`). */
  private probeMeasuringFrom: number | null = null;
  /** When the probe's first round trip ended: `probeMaxMs` counts from there (an idle probe waits). */
  private probeFirstSampleAt: number | null = null;
  private nextProbeAt = Number.POSITIVE_INFINITY;
  private samples: number[] = [];
  private sampleCursor = 0;
  private windowStart: number | null = null;
  private windowDrops = 0;
  private windowPeakInFlight = 0;

  constructor(settings: AdaptiveSettings) {
    validateAdaptiveSettings(settings);
    this.s = settings;
    this.resumeAt = clamp(Math.round(settings.initial), settings.min, settings.max);
    this.current = settings.min;
  }

  get limit(): number {
    return this.current;
  }

  view(): AdaptiveView {
    return { limit: this.current, phase: this.phase, minRttMs: this.minRtt, sampleMs: this.lastSample, pressure: this.lastPressure };
  }

  /** New bounds (KV `concurrency_min` / `concurrency_max`): the limit is brought inside them at once. */
  setBounds(min: number, max: number): void {
    validateAdaptiveSettings({ min, max });
    this.s = { ...this.s, min, max };
    this.current = this.phase === "probing" ? min : clamp(this.current, min, max);
    this.resumeAt = clamp(this.resumeAt, min, max);
  }

  /** A message settled through a PubAck: its time from pull (`startMs`) to then (`endMs`). */
  observe(startMs: number, endMs: number): void {
    if (this.phase === "probing") {
      // Only messages pulled after the in-flight ones drained to `min` say what the minimum is.
      if (this.probeMeasuringFrom === null || startMs < this.probeMeasuringFrom) return;
      this.probeFirstSampleAt ??= endMs;
    }
    const rtt = Math.max(0, endMs - startMs);
    if (this.samples.length < MAX_WINDOW_SAMPLES) this.samples.push(rtt);
    else {
      this.samples[this.sampleCursor] = rtt;
      this.sampleCursor = (this.sampleCursor + 1) % MAX_WINDOW_SAMPLES;
    }
  }

  /** A publish timed out or failed: the strongest sign of queueing. */
  dropped(): void {
    this.windowDrops++;
  }

  /** Advance to `nowMs` with the pressures read now; answers the limit to use. */
  tick(nowMs: number, p: Pressure): number {
    const s = this.s;
    this.lastPressure = Math.max(pressureOf(p.heapUsed, p.heapLimit, s.heap), pressureOf(p.heldBytes, p.maxBytes, s.bytes));
    this.windowPeakInFlight = Math.max(this.windowPeakInFlight, p.inFlight);
    if (this.windowStart === null) this.windowStart = nowMs;
    if (this.phase === "probing") this.tickProbe(nowMs, p.inFlight);
    else if (nowMs >= this.nextProbeAt && this.lastPressure === 0) this.startProbe(nowMs);
    else this.tickWindow(nowMs);
    return this.current;
  }

  private startProbe(nowMs: number): void {
    this.phase = "probing";
    this.resumeAt = this.current;
    this.current = this.s.min;
    this.probeMeasuringFrom = null;
    this.probeFirstSampleAt = null;
    this.clearWindow(nowMs);
  }

  private tickProbe(nowMs: number, inFlight: number): void {
    const s = this.s;
    if (this.lastPressure > 0) {
      // Memory first: the probe's limit is the lowest there is, and it must not end in a jump back up.
      this.resumeAt = this.shrunkByPressure(this.resumeAt);
    }
    if (this.probeMeasuringFrom === null) {
      if (inFlight > s.min) return;
      this.probeMeasuringFrom = nowMs;
      this.clearWindow(nowMs);
      return;
    }
    const enough = this.samples.length >= s.probeSamples;
    const tooLong = this.probeFirstSampleAt !== null && nowMs - this.probeFirstSampleAt >= s.probeMaxMs;
    if (!enough && !tooLong) return;
    const measured = median(this.samples);
    this.minRtt = measured;
    this.lastSample = measured;
    this.phase = "adapting";
    this.current = this.resumeAt;
    this.nextProbeAt = nowMs + s.probeEveryMs * (0.9 + 0.2 * s.random());
    this.clearWindow(nowMs);
  }

  private tickWindow(nowMs: number): void {
    const s = this.s;
    const elapsed = nowMs - this.windowStart!;
    if (this.lastPressure > 0 && elapsed >= s.windowMs) {
      this.current = this.shrunkByPressure(this.current);
      this.clearWindow(nowMs);
      return;
    }
    const full = elapsed >= s.windowMs && this.samples.length >= s.windowSamples;
    const overdue = elapsed >= s.maxWindowMs;
    if (!full && !overdue) return;
    if (this.samples.length === 0 && this.windowDrops === 0) {
      this.clearWindow(nowMs); // nothing settled: nothing learnt
      return;
    }
    this.current = this.nextLimit();
    this.clearWindow(nowMs);
  }

  /** The gradient step at the end of a window with samples or drops. */
  private nextLimit(): number {
    const s = this.s;
    const limit = this.current;
    let gradient = 0.5;
    if (this.samples.length > 0) {
      const sample = median(this.samples);
      this.lastSample = sample;
      if (this.minRtt === null || sample < this.minRtt) this.minRtt = sample;
      const threshold = this.minRtt * (1 + s.tolerance) + s.slackMs;
      gradient = clamp(threshold / Math.max(sample, 1e-3), 0.5, 2);
    }
    if (this.windowDrops > 0) gradient = 0.5;
    // Fewer than a quarter of the credits in use by settling messages: the limit did not bind, so the
    // round trips say nothing of it (a longer one is the broker's or a pause's, not queueing the
    // limit let in). Only a drop moves it. A quarter, not a half: the credits beyond those in flight
    // keep pull requests open at the server, so a message published finds one waiting (with a
    // broker 10 ms away, half left gaps without one, and a p99 twice that of a limit of 512).
    if (this.windowPeakInFlight < limit / 4 && this.windowDrops === 0) return limit;
    // The headroom only while there is no queueing: added to a shrinking limit it would hold a small one up.
    const target = gradient >= 1 ? limit * gradient + Math.sqrt(limit) : limit * gradient;
    const next = limit + s.smoothing * (target - limit);
    // Rounded away from the limit, so that a small limit moves at all.
    return clamp(next > limit ? Math.ceil(next) : Math.floor(next), s.min, s.max);
  }

  /** The limit under the last tick's pressure: down by up to half. */
  private shrunkByPressure(limit: number): number {
    return clamp(Math.floor(limit * (1 - 0.5 * this.lastPressure)), this.s.min, this.s.max);
  }

  private clearWindow(nowMs: number): void {
    this.samples = [];
    this.sampleCursor = 0;
    this.windowStart = nowMs;
    this.windowDrops = 0;
    this.windowPeakInFlight = 0;
  }
}
