/**
 * The last 15 minutes of the service, sampled every few seconds, for the
 * status page's charts: results/s, consumer lag, end-to-end latency (p50,
 * p99), in flight against the limit, memory (RSS, heap used, the snapshot's
 * own bytes). Bounded: a ring of at most windowMs / everyMs samples, and a
 * fixed-size reservoir of latencies per sample.
 */
import type { RuleSnapshot } from "../match/snapshot.js";

/** End-to-end latencies of one sampling interval: a uniform reservoir of at most `capacity` values. */
export interface LatencyWindow {
  observe(seconds: number): void;
  /** p50 and p99 of what was observed since the last call (ms), null when nothing was; starts a new interval. */
  takeQuantiles(): { p50Ms: number | null; p99Ms: number | null };
}

export function createLatencyWindow(capacity = 2_048, random: () => number = Math.random): LatencyWindow {
  const values = new Float64Array(capacity);
  let seen = 0;
  return {
    observe(seconds) {
      if (seen < capacity) values[seen] = seconds;
      else {
        const k = Math.floor(random() * (seen + 1));
        if (k < capacity) values[k] = seconds;
      }
      seen++;
    },
    takeQuantiles() {
      const n = Math.min(seen, capacity);
      seen = 0;
      if (n === 0) return { p50Ms: null, p99Ms: null };
      const sorted = values.slice(0, n).sort();
      const at = (q: number) => Math.round(sorted[Math.min(n - 1, Math.floor(q * n))]! * 1e6) / 1e3;
      return { p50Ms: at(0.5), p99Ms: at(0.99) };
    },
  };
}

/** Bytes a snapshot holds, about: its typed arrays, plus a per-object estimate for rules and sets. */
export function snapshotBytes(s: RuleSnapshot): number {
  const a = s.assetIndex;
  const p = s.table.properties;
  let bytes = 0;
  for (const t of [a.slotAsset, a.ranks, a.rankFields, a.minRatioBp, p.id, p.ruleId, p.kind, p.value]) bytes += t.byteLength;
  let setEntries = 0;
  for (const z of a.zones) setEntries += z?.size ?? 0;
  for (const x of a.exemptMids) setEntries += x?.size ?? 0;
  // A compiled rule object and its table row: ~ 300 bytes; a Set entry ~ 40 bytes.
  return bytes + (s.rules.length + s.table.rules.size) * 300 + setEntries * 40;
}

export interface HistorySample {
  /** Epoch ms. */
  readonly t: number;
  readonly resultsPerSecond: number;
  readonly pending: number | null;
  readonly ackPending: number | null;
  readonly p50Ms: number | null;
  readonly p99Ms: number | null;
  readonly inFlight: number;
  readonly limit: number;
  /** With `auto`: the adaptive limiter's minimum and last median round trip (pull to PubAck), ms. */
  readonly minRttMs: number | null;
  readonly rttMs: number | null;
  readonly rssMb: number;
  readonly heapUsedMb: number;
  readonly snapshotMb: number | null;
}

export interface HistorySources {
  readonly settled: () => number;
  readonly lag: () => { pending: number; ackPending: number } | null;
  readonly latencies: LatencyWindow;
  readonly inFlight: () => number;
  readonly limit: () => number;
  readonly concurrency?: () => { readonly minRttMs?: number | null; readonly sampleMs?: number | null };
  readonly snapshot: () => RuleSnapshot | null;
  readonly now?: () => number;
}

export interface History {
  samples(): readonly HistorySample[];
  stop(): void;
}

const roundedMs = (ms: number | null | undefined) => (ms === null || ms === undefined ? null : Math.round(ms * 100) / 100);

export const HISTORY_WINDOW_MS = 15 * 60_000;

export function recordHistory(src: HistorySources, everyMs: number, windowMs = HISTORY_WINDOW_MS): History {
  const now = src.now ?? Date.now;
  const max = Math.max(2, Math.ceil(windowMs / everyMs));
  const ring: HistorySample[] = [];
  let lastSettled = src.settled();
  let lastAt = now();
  let lastSnapshot: RuleSnapshot | null = null;
  let lastSnapshotMb: number | null = null;
  const sample = () => {
    const t = now();
    const settled = src.settled();
    const lag = src.lag();
    const memory = process.memoryUsage();
    const snapshot = src.snapshot();
    const adaptive = src.concurrency?.();
    if (snapshot !== lastSnapshot) {
      lastSnapshot = snapshot;
      lastSnapshotMb = snapshot === null ? null : Math.round(snapshotBytes(snapshot) / 1e4) / 100;
    }
    ring.push({
      t,
      resultsPerSecond: Math.round(((settled - lastSettled) / Math.max(1, t - lastAt)) * 1000 * 10) / 10,
      pending: lag?.pending ?? null,
      ackPending: lag?.ackPending ?? null,
      ...src.latencies.takeQuantiles(),
      inFlight: src.inFlight(),
      limit: src.limit(),
      minRttMs: roundedMs(adaptive?.minRttMs),
      rttMs: roundedMs(adaptive?.sampleMs),
      rssMb: Math.round(memory.rss / 1e4) / 100,
      heapUsedMb: Math.round(memory.heapUsed / 1e4) / 100,
      snapshotMb: lastSnapshotMb,
    });
    if (ring.length > max) ring.shift();
    lastSettled = settled;
    lastAt = t;
  };
  const timer = setInterval(sample, everyMs);
  timer.unref();
  return { samples: () => ring, stop: () => clearInterval(timer) };
}
