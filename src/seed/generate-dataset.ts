/**
 * A realistic, deterministic dataset: rules and properties shaped like
 * production (skewed asset popularity, assets shared between rules, zones,
 * exempt uploaders, disabled and deleted rows, validity windows and a few
 * contract-breaking rows), and recognition results against them. Pure: the
 * same options always give the same rows.
 */
import type { RuleAction } from "../match/types.js";

export interface DatasetOptions {
  readonly rules: number;
  readonly properties: number;
  readonly seed: number;
}

export interface SeedRule {
  id: number;
  name: string;
  owner_id: number;
  action: string;
  priority: number;
  min_matched_ms: number;
  min_ratio_bp: number;
  min_score: string;
  state: number;
  valid_from: string | null;
  valid_to: string | null;
  is_deleted: number;
}

export interface SeedProperty {
  id: number;
  rule_id: number;
  kind: string;
  value: string;
  state: number;
  is_deleted: number;
}

/** mulberry32: a small, fast, seedable PRNG (deterministic across platforms). */
export function createRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const FIRST_ASSET_ID = 5_550_001;
const ZONES = 40;
const UPLOADERS = 200_000;
const ACTION_WEIGHTS: [RuleAction, number][] = [["block", 0.15], ["limit", 0.15], ["review", 0.2], ["claim", 0.5]];

/** Distinct assets in play: roughly one for every three asset properties. */
export function assetUniverse(options: DatasetOptions): number {
  return Math.max(10, Math.floor(options.properties / 3));
}

/** An asset id with skewed popularity: low indexes are far more common. */
export function pickAsset(random: () => number, universe: number): number {
  return FIRST_ASSET_ID + Math.floor(universe * random() ** 1.5);
}

function pick<T>(random: () => number, weighted: [T, number][]): T {
  let u = random();
  for (const [value, weight] of weighted) {
    if ((u -= weight) < 0) return value;
  }
  return weighted[weighted.length - 1]![0];
}

const int = (random: () => number, lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1));
const iso = (ms: number) => new Date(ms).toISOString();

/** The rule rows. A few break the contract on purpose (spec section 2). */
export function* generateRules(options: DatasetOptions): Generator<SeedRule> {
  const random = createRandom(options.seed);
  const broken = new Set<number>();
  for (let k = 0; k < Math.min(5, Math.floor(options.rules / 500)); k++) broken.add(int(random, 1, options.rules));
  for (let id = 1; id <= options.rules; id++) {
    const action = pick(random, ACTION_WEIGHTS);
    const windowed = random() < 0.1;
    const from = Date.UTC(2026, 0, 1) + int(random, 0, 300) * 86_400_000;
    const rule: SeedRule = {
      id,
      name: `rule ${id}: ${action}`,
      owner_id: 1000 + int(random, 0, 800),
      action,
      priority: int(random, 0, 20),
      min_matched_ms: random() < 0.5 ? 0 : int(random, 1, 12) * 10_000,
      min_ratio_bp: random() < 0.7 ? 0 : int(random, 1, 10) * 500,
      min_score: (0.5 + int(random, 0, 450) / 1000).toFixed(3),
      state: random() < 0.05 ? 0 : 1,
      valid_from: windowed ? iso(from) : null,
      valid_to: windowed && random() < 0.8 ? iso(from + int(random, 7, 120) * 86_400_000) : null,
      is_deleted: random() < 0.03 ? 1 : 0,
    };
    if (broken.has(id)) {
      if (id % 2 === 0) rule.action = action.toUpperCase();
      else rule.min_ratio_bp = 12_000;
    }
    yield rule;
  }
}

/** The property rows: zones and exempt uploaders on some rules, assets shared between rules. */
export function* generateProperties(options: DatasetOptions): Generator<SeedProperty> {
  const random = createRandom(options.seed ^ 0x5eed);
  const universe = assetUniverse(options);
  let id = 0;
  const row = (rule_id: number, kind: string, value: string): SeedProperty => ({
    id: ++id,
    rule_id,
    kind,
    value,
    state: random() < 0.02 ? 0 : 1,
    is_deleted: random() < 0.02 ? 1 : 0,
  });
  // Zones on ~15% of rules, exempt uploaders on ~10%.
  for (let rule = 1; rule <= options.rules && id < options.properties; rule++) {
    if (random() < 0.15) for (let k = int(random, 1, 3); k > 0 && id < options.properties; k--) yield row(rule, "zone", String(int(random, 1, ZONES)));
    if (random() < 0.1) for (let k = int(random, 1, 5); k > 0 && id < options.properties; k--) yield row(rule, "exempt_mid", String(int(random, 1, UPLOADERS)));
  }
  const brokenEvery = Math.max(1, Math.floor(options.properties / 20));
  while (id < options.properties) {
    const rule = int(random, 1, options.rules);
    const asset = pickAsset(random, universe);
    if ((id + 1) % brokenEvery === 0) {
      // One in twenty of these is a contract break of each kind.
      const n = (id + 1) / brokenEvery;
      if (n % 3 === 0) yield row(rule, "asset", ` ${asset}`);
      else if (n % 3 === 1) yield row(rule, "Asset", String(asset));
      else yield row(options.rules + 1000 + n, "asset", String(asset)); // rule does not exist
      continue;
    }
    yield row(rule, "asset", random() < 0.01 ? `00${asset}` : String(asset));
  }
}

/** Options for the recognition results written for replay and load tests. */
export interface ResultsOptions extends DatasetOptions {
  readonly results: number;
  /** Share of lines that are invalid on purpose (default 0.005). */
  readonly invalidShare?: number;
}

const INVALID_LINES: ((r: Record<string, unknown>) => string)[] = [
  (r) => JSON.stringify(r).slice(0, 20),
  (r) => JSON.stringify({ ...r, aid: 0 }),
  (r) => JSON.stringify({ ...r, durationMs: "long" }),
  (r) => JSON.stringify({ ...r, recognizedAt: "yesterday" }),
  (r) => JSON.stringify({ ...r, matches: [{ assetId: 1, startMs: 10, endMs: 5, score: 1 }] }),
  () => "[]",
];

/** Recognition results as NDJSON lines, some of them invalid on purpose. */
export function* generateResultLines(options: ResultsOptions): Generator<string> {
  const random = createRandom(options.seed ^ 0x7e57);
  const universe = assetUniverse(options);
  const invalidShare = options.invalidShare ?? 0.005;
  for (let k = 0; k < options.results; k++) {
    const durationMs = int(random, 30, 7200) * 1000;
    const items = random() < 0.2 ? 0 : int(random, 1, 6);
    const matches = [];
    for (let m = 0; m < items; m++) {
      const startMs = int(random, 0, durationMs - 1000);
      matches.push({
        // Mostly assets of the rules; some the rules do not know.
        assetId: random() < 0.85 ? pickAsset(random, universe) : 9_000_000 + int(random, 0, 1_000_000),
        startMs,
        endMs: Math.min(durationMs + 5000, startMs + int(random, 5, 300) * 1000),
        score: Math.round((0.4 + random() * 0.6) * 1000) / 1000,
      });
    }
    const result = {
      aid: 170_000 + k,
      cid: 270_000 + k,
      mid: int(random, 1, UPLOADERS),
      tid: int(random, 0, ZONES),
      durationMs,
      recognizedAt: iso(Date.UTC(2026, 0, 1) + Math.floor(random() * 330 * 86_400_000)),
      matches,
    };
    if (random() < invalidShare) yield INVALID_LINES[k % INVALID_LINES.length]!(result);
    else yield JSON.stringify(result);
  }
}
