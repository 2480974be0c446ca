/**
 * A JIT warm-up of the per-message stages that are tortmatch's own: decode,
 * match and the verdict's encoding, run over synthetic results made from the
 * snapshot's own assets before that first snapshot goes into service. Without
 * it, the first few thousand messages of a fresh process run through code V8
 * has not optimised yet, slower than they arrive at half load: a backlog of
 * 100–200 ms builds in the first second and takes most of that second to drain
 * (bench:throughput prints the start-up's p99). Bounded twice: at most
 * `iterations` results and `budgetMs` of the event loop, once per process.
 * Pure: no I/O, nothing kept.
 */
import { decodeResult } from "./ingest/decode-result.js";
import { decideVerdict } from "./match/match-result.js";
import { slotAssetId, type RuleSnapshot } from "./match/snapshot.js";
import { encodeVerdict } from "./verdict/publish.js";

export interface WarmUpOptions {
  /** Most results run through the stages. */
  readonly iterations: number;
  /** Most milliseconds spent, checked every 256 results. */
  readonly budgetMs: number;
}

/** About 100 ms on the machine of the README's figures: the stages are optimised by then. */
export const DEFAULT_WARM_UP: WarmUpOptions = { iterations: 5_000, budgetMs: 150 };

/** Distinct synthetic results cycled through: enough shapes and assets for representative type feedback. */
const DISTINCT_RESULTS = 64;
/** Assets sampled from the index (evenly over its slots). */
const SAMPLED_ASSETS = 256;

/** A deterministic generator in [0, 1): the warm-up needs variety, not randomness. */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1_103_515_245) + 12_345) >>> 0) / 4_294_967_296;
}

/** Up to `n` asset ids of the index, spread over its slots; none when it has no assets. Asset 0 (a valid property value, never a valid match item's assetId) is left out. */
function sampleAssets(snapshot: RuleSnapshot, n: number): number[] {
  const index = snapshot.assetIndex;
  const assets: number[] = [];
  const step = Math.max(1, Math.floor(index.slots / (4 * n)));
  for (let slot = 0; slot < index.slots && assets.length < n; slot += step) {
    const asset = slotAssetId(index, slot);
    if (asset >= 1) assets.push(asset);
  }
  return assets;
}

/** Encoded results as they arrive from JetStream, on `assets` (or made-up ones), some matching, some not. */
function syntheticInputs(assets: readonly number[]): Uint8Array[] {
  const random = lcg(42);
  const encoder = new TextEncoder();
  const now = Date.now();
  const inputs: Uint8Array[] = [];
  for (let i = 0; i < DISTINCT_RESULTS; i++) {
    const durationMs = 60_000 + Math.floor(random() * 3_600_000);
    const matches = Array.from({ length: 1 + Math.floor(random() * 6) }, (_, k) => {
      const startMs = Math.floor(random() * durationMs * 0.8);
      return {
        assetId: assets.length > 0 ? assets[Math.floor(random() * assets.length)]! : 1 + k,
        startMs,
        endMs: startMs + 1 + Math.floor(random() * (durationMs - startMs - 1)),
        score: Math.round(random() * 1000) / 1000,
      };
    });
    const recognizedAt = new Date(now - Math.floor(random() * 365 * 86_400_000)).toISOString();
    inputs.push(encoder.encode(JSON.stringify({ aid: i + 1, cid: i + 1, mid: i + 1, tid: Math.floor(random() * 64), durationMs, recognizedAt, matches })));
  }
  return inputs;
}

/**
 * Run the stages over synthetic results; returns how many ran, how many hit a rule, how many did not
 * decode (0 unless this module is wrong: never a reason to stop a service) and how long it took.
 */
export function warmUpStages(snapshot: RuleSnapshot, options: WarmUpOptions = DEFAULT_WARM_UP): { iterations: number; hits: number; invalid: number; ms: number } {
  const started = performance.now();
  const inputs = syntheticInputs(sampleAssets(snapshot, SAMPLED_ASSETS));
  // One decidedAt for all: the pipeline's comes from isoClock (text made once per millisecond), not a toISOString per result.
  const decidedAt = new Date().toISOString();
  let i = 0;
  let hits = 0;
  let invalid = 0;
  for (; i < options.iterations; i++) {
    if ((i & 255) === 0 && performance.now() - started > options.budgetMs) break;
    const decided = decideVerdict(decodeResult(inputs[i % inputs.length]!), snapshot, { stream: "warm-up", seq: i + 1 }, decidedAt);
    if (!decided.ok) {
      invalid++;
      continue;
    }
    if (decided.verdict.action !== "pass") hits++;
    encodeVerdict(decided.verdict);
  }
  return { iterations: i, hits, invalid, ms: performance.now() - started };
}
