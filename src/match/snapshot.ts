/**
 * The immutable in-memory index the matcher reads: active rules by asset id,
 * each rule carrying its thresholds, window, zones and exempt uploaders.
 */
import type { RuleTable } from "./rule-table.js";
import { ACTION_SEVERITY, type RuleAction } from "./types.js";

/** An active rule, ready for matching. */
export interface CompiledRule {
  readonly id: number;
  readonly ownerId: number;
  readonly action: RuleAction;
  readonly priority: number;
  /** Position in verdict order: priority desc, severity desc, id asc. */
  readonly rank: number;
  readonly minMatchedMs: number;
  readonly minRatioBp: number;
  readonly minScore: number;
  /** Inclusive; -Infinity when unbounded. */
  readonly validFromMs: number;
  /** Exclusive; +Infinity when unbounded. */
  readonly validToMs: number;
  /** Zone ids, or null when the rule has none (then every zone counts). */
  readonly zones: ReadonlySet<number> | null;
  /** Exempt uploader ids, or null when none. */
  readonly exemptMids: ReadonlySet<number> | null;
}

/** A row skipped because it breaks the contract, as reported once per load. */
export interface SkippedRow {
  readonly table: "video_tort_rule" | "video_tort_rule_property";
  readonly id: number;
  readonly reason: string;
}

/**
 * Active rules by asset id, laid out for the matcher's hot loop: an
 * open-addressing hash table of asset ids in typed arrays, pointing into one
 * flat list of rule ranks, and the fields every candidate is filtered on kept
 * by rank in typed arrays. A few MB for the production table, and no pointer
 * chasing per lookup.
 */
export interface AssetIndex {
  /** Table size minus one (the size is a power of two, at least twice the assets). */
  readonly mask: number;
  /** Asset id per slot; -1 marks an empty slot. */
  readonly slotAsset: Float64Array;
  /** Where each slot's ranks start in `ranks`, and how many. */
  readonly slotFirst: Int32Array;
  readonly slotCount: Int32Array;
  /** Rule ranks, grouped by asset, each group ascending (verdict order). */
  readonly ranks: Int32Array;
  /** By rank: min_score, valid_from (ms, -Infinity when open), valid_to (ms, +Infinity when open). */
  readonly minScore: Float64Array;
  readonly validFromMs: Float64Array;
  readonly validToMs: Float64Array;
  /** By rank: zone ids and exempt uploaders, null when the rule has none. */
  readonly zones: readonly (ReadonlySet<number> | null)[];
  readonly exemptMids: readonly (ReadonlySet<number> | null)[];
}

/** Slot of an asset id in the index, or -1. Asset ids are non-negative safe integers. */
export function findAssetSlot(index: AssetIndex, assetId: number): number {
  let slot = hashAsset(assetId) & index.mask;
  for (;;) {
    const key = index.slotAsset[slot]!;
    if (key === assetId) return slot;
    if (key === -1) return -1;
    slot = (slot + 1) & index.mask;
  }
}

function hashAsset(assetId: number): number {
  const lo = assetId >>> 0; // ToUint32 of a safe integer: its low 32 bits
  const hi = (assetId / 4294967296) >>> 0;
  const h = Math.imul(lo ^ Math.imul(hi, 0x85ebca6b), 0x9e3779b1);
  return h ^ (h >>> 16);
}

function buildAssetIndex(rules: readonly CompiledRule[], assetsByRank: readonly ReadonlySet<number>[]): AssetIndex {
  const ranksByAsset = new Map<number, number[]>();
  assetsByRank.forEach((assets, rank) => {
    for (const asset of assets) {
      const list = ranksByAsset.get(asset);
      if (list === undefined) ranksByAsset.set(asset, [rank]);
      else list.push(rank); // ranks arrive ascending, so each list stays in verdict order
    }
  });
  let size = 16;
  while (size < ranksByAsset.size * 2) size *= 2;
  const mask = size - 1;
  const slotAsset = new Float64Array(size).fill(-1);
  const slotFirst = new Int32Array(size);
  const slotCount = new Int32Array(size);
  let pairs = 0;
  for (const list of ranksByAsset.values()) pairs += list.length;
  const ranks = new Int32Array(pairs);
  let next = 0;
  for (const [asset, list] of ranksByAsset) {
    let slot = hashAsset(asset) & mask;
    while (slotAsset[slot] !== -1) slot = (slot + 1) & mask;
    slotAsset[slot] = asset;
    slotFirst[slot] = next;
    slotCount[slot] = list.length;
    ranks.set(list, next);
    next += list.length;
  }
  return {
    mask,
    slotAsset,
    slotFirst,
    slotCount,
    ranks,
    minScore: Float64Array.from(rules, (r) => r.minScore),
    validFromMs: Float64Array.from(rules, (r) => r.validFromMs),
    validToMs: Float64Array.from(rules, (r) => r.validToMs),
    zones: rules.map((r) => r.zones),
    exemptMids: rules.map((r) => r.exemptMids),
  };
}

/** How a snapshot came to be. */
export type LoadKind = "full" | "incremental";

/** One immutable, versioned snapshot of the rules. */
export interface RuleSnapshot {
  /** Opaque name of this snapshot: newest mtime and row counts, equal on every instance that read the same rows. */
  readonly version: string;
  readonly loadKind: LoadKind;
  /** When the rows were read (ISO-8601 UTC). */
  readonly loadedAt: string;
  /** Active rules in verdict order: `rules[rank]`. */
  readonly rules: readonly CompiledRule[];
  /** Active rules by asset id. */
  readonly assetIndex: AssetIndex;
  readonly counts: {
    readonly ruleRows: number;
    readonly propertyRows: number;
    readonly activeRules: number;
    readonly skippedRules: number;
    readonly skippedProperties: number;
  };
  /** Every skipped row of this load, in id order per table. */
  readonly skipped: readonly SkippedRow[];
  /** The rows behind this snapshot, for the next incremental refresh. */
  readonly table: RuleTable;
}

interface RuleBuild {
  assets: Set<number>;
  zones: Set<number> | null;
  exemptMids: Set<number> | null;
}

function byVerdictOrder(
  a: { priority: number; action: RuleAction; id: number },
  b: { priority: number; action: RuleAction; id: number },
): number {
  return b.priority - a.priority || ACTION_SEVERITY[b.action] - ACTION_SEVERITY[a.action] || a.id - b.id;
}

/** Compile a rule table into a snapshot. Pure and synchronous. */
export function compileSnapshot(table: RuleTable, meta: { loadKind: LoadKind; loadedAt: string }): RuleSnapshot {
  const builds = new Map<number, RuleBuild>();
  for (const rule of table.rules.values()) {
    if (rule.state === 1 && rule.isDeleted === 0) builds.set(rule.id, { assets: new Set(), zones: null, exemptMids: null });
  }

  const orphanProperties: SkippedRow[] = [];
  for (const [id, p] of table.properties) {
    const build = builds.get(p.ruleId);
    if (build === undefined) {
      // The rule is missing or was skipped; a property of an inactive rule is simply unused.
      if (!table.rules.has(p.ruleId)) {
        orphanProperties.push({ table: "video_tort_rule_property", id, reason: `rule ${p.ruleId} does not exist or was skipped` });
      }
      continue;
    }
    if (p.kind === "asset") {
      if (p.value >= 0) build.assets.add(p.value);
    } else if (p.kind === "zone") {
      // A zone beyond 2^53 still makes Z(R) non-empty: no tid can then be in it.
      (build.zones ??= new Set()).add(p.value);
    } else if (p.value >= 0) {
      (build.exemptMids ??= new Set()).add(p.value);
    }
  }

  const active = [...builds.keys()].map((id) => table.rules.get(id)!).sort(byVerdictOrder);
  const rules: CompiledRule[] = active.map((rule, rank) => {
    const build = builds.get(rule.id)!;
    return {
      id: rule.id,
      ownerId: rule.ownerId,
      action: rule.action,
      priority: rule.priority,
      rank,
      minMatchedMs: rule.minMatchedMs,
      minRatioBp: rule.minRatioBp,
      minScore: Number(rule.minScore),
      validFromMs: rule.validFromMs ?? Number.NEGATIVE_INFINITY,
      validToMs: rule.validToMs ?? Number.POSITIVE_INFINITY,
      zones: build.zones,
      exemptMids: build.exemptMids,
    };
  });
  const assetIndex = buildAssetIndex(rules, active.map((rule) => builds.get(rule.id)!.assets));

  const skipped: SkippedRow[] = [
    ...[...table.skippedRules].map(([id, reason]) => ({ table: "video_tort_rule" as const, id, reason })),
    ...[...table.skippedProperties].map(([id, reason]) => ({ table: "video_tort_rule_property" as const, id, reason })),
    ...orphanProperties,
  ].sort((a, b) => (a.table === b.table ? a.id - b.id : a.table < b.table ? -1 : 1));

  const skippedProperties = table.skippedProperties.size + orphanProperties.length;
  return {
    version: `${new Date(table.maxMtimeMs).toISOString()}/${table.rules.size}r/${table.properties.size}p`,
    loadKind: meta.loadKind,
    loadedAt: meta.loadedAt,
    rules,
    assetIndex,
    counts: {
      ruleRows: table.rules.size,
      propertyRows: table.properties.size - orphanProperties.length,
      activeRules: active.length,
      skippedRules: table.skippedRules.size,
      skippedProperties,
    },
    skipped,
    table,
  };
}
