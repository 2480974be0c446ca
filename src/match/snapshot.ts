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

/** How a snapshot came to be. */
export type LoadKind = "full" | "incremental";

/** One immutable, versioned snapshot of the rules. */
export interface RuleSnapshot {
  /** Opaque name of this snapshot: newest mtime and row counts, equal on every instance that read the same rows. */
  readonly version: string;
  readonly loadKind: LoadKind;
  /** When the rows were read (ISO-8601 UTC). */
  readonly loadedAt: string;
  /** Active rules by asset id, each list in verdict order. */
  readonly rulesByAsset: ReadonlyMap<number, readonly CompiledRule[]>;
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
  const rulesByAsset = new Map<number, CompiledRule[]>();
  active.forEach((rule, rank) => {
    const build = builds.get(rule.id)!;
    const compiled: CompiledRule = {
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
    for (const asset of build.assets) {
      const list = rulesByAsset.get(asset);
      if (list === undefined) rulesByAsset.set(asset, [compiled]);
      else list.push(compiled); // rules arrive in rank order, so each list stays in verdict order
    }
  });

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
    rulesByAsset,
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
