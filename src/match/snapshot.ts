/**
 * The immutable in-memory index the matcher reads: active rules by asset id,
 * each rule carrying its thresholds, window, zones and exempt uploaders.
 */
import { digestRuleTable } from "./content-digest.js";
import { KIND_CODE, NO_PROPERTY, type RuleTable } from "./rule-table.js";
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
 *
 * A slot is 16 bytes of one buffer, seen through two views: the asset id
 * (f64 at `slotAsset[2 * slot]`), then where its ranks start and how many
 * (i32 at `slotRanks[4 * slot + 2]` and `[4 * slot + 3]`). A lookup reads one
 * cache line, not one in each of three arrays (the table is MBs: every
 * lookup misses the CPU caches; at 50x the rule set, tens of MBs).
 */
export interface AssetIndex {
  /** Slots in the table: twice the distinct assets (at least 8), so memory grows with the assets, not in powers of two. */
  readonly slots: number;
  /** slots / 2^32: an asset's home slot is floor(hash × scale). */
  readonly scale: number;
  /** Asset id of slot s at index 2s; -1 marks an empty slot. */
  readonly slotAsset: Float64Array;
  /** Where slot s's ranks start in `ranks` (index 4s + 2), and how many (4s + 3). */
  readonly slotRanks: Int32Array;
  /** Rule ranks, grouped by asset, each group in property-row order (the matcher sorts the ranks a result touched). */
  readonly ranks: Int32Array;
  /**
   * By rank r, side by side (one cache line per rule): min_score at 4r,
   * valid_from at 4r + 1 (ms, -Infinity when open), valid_to at 4r + 2 (ms,
   * +Infinity when open), min_matched_ms at 4r + 3.
   */
  readonly rankFields: Float64Array;
  /** By rank: min_ratio_bp. */
  readonly minRatioBp: Float64Array;
  /** By rank: zone ids and exempt uploaders, null when the rule has none. */
  readonly zones: readonly (ReadonlySet<number> | null)[];
  readonly exemptMids: readonly (ReadonlySet<number> | null)[];
}

/** Slot of an asset id in the index, or -1. Asset ids are non-negative safe integers. */
export function findAssetSlot(index: AssetIndex, assetId: number): number {
  const { slotAsset, slots } = index;
  let slot = Math.floor(hashAsset(assetId) * index.scale);
  for (;;) {
    const key = slotAsset[2 * slot]!;
    if (key === assetId) return slot;
    if (key === -1) return -1;
    if (++slot === slots) slot = 0;
  }
}

/** Where a slot's ranks start in `index.ranks`. */
export const slotFirst = (index: AssetIndex, slot: number): number => index.slotRanks[4 * slot + 2]!;
/** How many ranks a slot has (0 for an empty slot). */
export const slotCount = (index: AssetIndex, slot: number): number => index.slotRanks[4 * slot + 3]!;
/** The asset id of a slot, -1 when empty. */
export const slotAssetId = (index: AssetIndex, slot: number): number => index.slotAsset[2 * slot]!;

/** A 32-bit hash of an asset id, unsigned. */
function hashAsset(assetId: number): number {
  const lo = assetId >>> 0; // ToUint32 of a safe integer: its low 32 bits
  const hi = (assetId / 4294967296) >>> 0;
  const h = Math.imul(lo ^ Math.imul(hi, 0x85ebca6b), 0x9e3779b1);
  return (h ^ (h >>> 16)) >>> 0;
}

/** Open-addressing table of asset ids while they are counted, kept at most half full (the index is built from it). */
class AssetSlots {
  size: number;
  mask: number;
  asset: Float64Array;
  count: Int32Array;
  distinct = 0;

  constructor(expected: number) {
    let size = 16;
    while (size < expected * 2) size *= 2;
    this.size = size;
    this.mask = size - 1;
    this.asset = new Float64Array(size).fill(-1);
    this.count = new Int32Array(size);
  }

  /** Slot of `asset`, claiming an empty one when it is new. */
  slotOf(asset: number): number {
    let slot = hashAsset(asset) & this.mask;
    for (;;) {
      const key = this.asset[slot]!;
      if (key === asset) return slot;
      if (key === -1) {
        this.asset[slot] = asset;
        this.distinct++;
        return slot;
      }
      slot = (slot + 1) & this.mask;
    }
  }

  /** Double the table; returns old slot → new slot. */
  grow(): Int32Array {
    const { asset: oldAsset, count: oldCount } = this;
    const moved = new Int32Array(oldAsset.length);
    this.size *= 2;
    this.mask = this.size - 1;
    this.asset = new Float64Array(this.size).fill(-1);
    this.count = new Int32Array(this.size);
    this.distinct = 0;
    for (let s = 0; s < oldAsset.length; s++) {
      if (oldAsset[s] === -1) continue;
      const slot = this.slotOf(oldAsset[s]!);
      this.count[slot] = oldCount[s]!;
      moved[s] = slot;
    }
    return moved;
  }
}

/**
 * Build the asset index from (asset, rank) pairs in two passes: count per
 * asset slot, then place ranks. A rule listed twice for one asset (duplicate
 * property rows) is harmless: its intervals are unioned.
 */
function buildAssetIndex(rules: readonly CompiledRule[], pairAsset: Float64Array, pairRank: Int32Array, pairs: number): AssetIndex {
  // Assets are shared between rules: start from half the pairs and grow when needed.
  const slots = new AssetSlots(pairs >> 1);
  const pairSlot = new Int32Array(pairs);
  for (let i = 0; i < pairs; i++) {
    if (slots.distinct * 2 >= slots.size) {
      const moved = slots.grow();
      for (let k = 0; k < i; k++) pairSlot[k] = moved[pairSlot[k]!]!;
    }
    const slot = slots.slotOf(pairAsset[i]!);
    pairSlot[i] = slot;
    slots.count[slot]!++;
  }
  // The counting table above is sized in powers of two while it grows; the index is sized to the
  // distinct assets: twice as many slots (linear probing stays short at half full).
  const size = Math.max(8, 2 * slots.distinct);
  // size / 2^32 is exact (a division by a power of two), and floor(hash × scale) < size for every 32-bit hash.
  const scale = size / 4294967296;
  const table = new ArrayBuffer(16 * size);
  const slotAsset = new Float64Array(table);
  const slotRanks = new Int32Array(table);
  for (let s = 0; s < size; s++) slotAsset[2 * s] = -1; // (not fill: the odd f64s are the rank fields)
  const finalSlot = new Int32Array(slots.size);
  for (let s = 0; s < slots.size; s++) {
    const asset = slots.asset[s]!;
    if (asset === -1) continue;
    let slot = Math.floor(hashAsset(asset) * scale);
    while (slotAsset[2 * slot] !== -1) if (++slot === size) slot = 0;
    slotAsset[2 * slot] = asset;
    slotRanks[4 * slot + 3] = slots.count[s]!;
    finalSlot[s] = slot;
  }
  const next = new Int32Array(size);
  for (let s = 0, first = 0; s < size; s++) {
    slotRanks[4 * s + 2] = first;
    next[s] = first;
    first += slotRanks[4 * s + 3]!;
  }
  const ranks = new Int32Array(pairs);
  for (let i = 0; i < pairs; i++) {
    const slot = finalSlot[pairSlot[i]!]!;
    ranks[next[slot]!++] = pairRank[i]!;
  }
  return {
    slots: size,
    scale,
    slotAsset,
    slotRanks,
    ranks,
    rankFields: rankFieldsOf(rules),
    minRatioBp: Float64Array.from(rules, (r) => r.minRatioBp),
    zones: rules.map((r) => r.zones),
    exemptMids: rules.map((r) => r.exemptMids),
  };
}

function rankFieldsOf(rules: readonly CompiledRule[]): Float64Array {
  const fields = new Float64Array(4 * rules.length);
  rules.forEach((r, rank) => {
    fields[4 * rank] = r.minScore;
    fields[4 * rank + 1] = r.validFromMs;
    fields[4 * rank + 2] = r.validToMs;
    fields[4 * rank + 3] = r.minMatchedMs;
  });
  return fields;
}

/**
 * Rule id → rank of the active rules (-1 when not active). Dense ids (the
 * usual AUTO_INCREMENT case) get an Int32Array, else a Map.
 */
function rankLookup(active: readonly { id: number }[], allRuleIds: Iterable<number>): (ruleId: number) => number {
  let maxId = 0;
  for (const id of allRuleIds) if (id > maxId) maxId = id;
  if (maxId <= 8 * active.length + 65_536) {
    const dense = new Int32Array(maxId + 1).fill(-1);
    active.forEach((rule, rank) => (dense[rule.id] = rank));
    return (ruleId) => (ruleId <= maxId ? dense[ruleId]! : -1);
  }
  const sparse = new Map<number, number>();
  active.forEach((rule, rank) => sparse.set(rule.id, rank));
  return (ruleId) => sparse.get(ruleId) ?? -1;
}

/** How a snapshot came to be. */
export type LoadKind = "full" | "incremental";

/** One immutable, versioned snapshot of the rules. */
export interface RuleSnapshot {
  /**
   * Opaque name of this snapshot's content (spec section 5): newest mtime, a digest of every row
   * (content-digest.ts) and row counts. Equal exactly when the rows are, whoever read them and how.
   */
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

function byVerdictOrder(
  a: { priority: number; action: RuleAction; id: number },
  b: { priority: number; action: RuleAction; id: number },
): number {
  return b.priority - a.priority || ACTION_SEVERITY[b.action] - ACTION_SEVERITY[a.action] || a.id - b.id;
}

/** Compile a rule table into a snapshot. Pure and synchronous. */
export function compileSnapshot(table: RuleTable, meta: { loadKind: LoadKind; loadedAt: string }): RuleSnapshot {
  const active = [...table.rules.values()].filter((r) => r.state === 1 && r.isDeleted === 0).sort(byVerdictOrder);
  const rankOf = rankLookup(active, table.rules.keys());

  const zonesByRank: (Set<number> | null)[] = active.map(() => null);
  const exemptByRank: (Set<number> | null)[] = active.map(() => null);
  const p = table.properties;
  const pairAsset = new Float64Array(p.length);
  const pairRank = new Int32Array(p.length);
  let pairs = 0;
  let counting = 0;
  const orphanProperties: SkippedRow[] = [];
  for (let i = 0; i < p.length; i++) {
    const kind = p.kind[i]!;
    if (kind === NO_PROPERTY) continue;
    const ruleId = p.ruleId[i]!;
    const rank = rankOf(ruleId);
    if (rank === -1) {
      // The rule is missing or was skipped; a property of an inactive rule is simply unused.
      if (!table.rules.has(ruleId)) {
        orphanProperties.push({ table: "video_tort_rule_property", id: p.id[i]!, reason: `rule ${ruleId} does not exist or was skipped` });
      } else {
        counting++;
      }
      continue;
    }
    counting++;
    const value = p.value[i]!;
    if (kind === KIND_CODE.asset) {
      if (value >= 0) {
        pairAsset[pairs] = value;
        pairRank[pairs++] = rank;
      }
    } else if (kind === KIND_CODE.zone) {
      // A zone beyond 2^53 still makes Z(R) non-empty: no tid can then be in it.
      (zonesByRank[rank] ??= new Set()).add(value);
    } else if (value >= 0) {
      (exemptByRank[rank] ??= new Set()).add(value);
    }
  }

  const rules: CompiledRule[] = active.map((rule, rank) => ({
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
    zones: zonesByRank[rank]!,
    exemptMids: exemptByRank[rank]!,
  }));
  const assetIndex = buildAssetIndex(rules, pairAsset, pairRank, pairs);

  const skipped: SkippedRow[] = [
    ...[...table.skippedRules].map(([id, { reason }]) => ({ table: "video_tort_rule" as const, id, reason })),
    ...[...table.skippedProperties].map(([id, reason]) => ({ table: "video_tort_rule_property" as const, id, reason })),
    ...orphanProperties,
  ].sort((a, b) => (a.table === b.table ? a.id - b.id : a.table < b.table ? -1 : 1));

  const skippedProperties = table.skippedProperties.size + orphanProperties.length;
  return {
    version: `${new Date(table.maxMtimeMs).toISOString()}/${digestRuleTable(table).slice(0, 16)}/${table.rules.size}r/${table.countingProperties}p`,
    loadKind: meta.loadKind,
    loadedAt: meta.loadedAt,
    rules,
    assetIndex,
    counts: {
      ruleRows: table.rules.size,
      propertyRows: counting,
      activeRules: active.length,
      skippedRules: table.skippedRules.size,
      skippedProperties,
    },
    skipped,
    table,
  };
}
