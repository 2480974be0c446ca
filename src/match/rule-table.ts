/**
 * The rule rows as the snapshot was built from them, kept so that an
 * incremental refresh can apply changed rows without reading both tables again.
 * Rows that break the contract of spec section 2 are kept out, with a reason.
 */
import { PROPERTY_KINDS, RULE_ACTIONS, type PropertyKind, type RuleAction } from "./types.js";

/** A `video_tort_rule` row as the loader hands it over (datetimes already UTC epoch ms). */
export interface RuleRow {
  readonly id: number;
  readonly ownerId: number;
  readonly action: string;
  readonly priority: number;
  readonly minMatchedMs: number;
  readonly minRatioBp: number;
  /** DECIMAL(4,3) as its decimal text, e.g. "0.800". */
  readonly minScore: string;
  readonly state: number;
  readonly validFromMs: number | null;
  readonly validToMs: number | null;
  readonly isDeleted: number;
  readonly mtimeMs: number;
}

/** A `video_tort_rule_property` row as the loader hands it over. */
export interface PropertyRow {
  readonly id: number;
  readonly ruleId: number;
  readonly kind: string;
  readonly value: string;
  readonly state: number;
  readonly isDeleted: number;
  readonly mtimeMs: number;
}

/** A rule row that keeps the contract. */
export interface RuleEntry extends Omit<RuleRow, "action"> {
  readonly action: RuleAction;
}

/** An active property that keeps the contract. */
export interface PropertyEntry {
  readonly ruleId: number;
  readonly kind: PropertyKind;
  /** The decimal value; -1 when it is beyond the safe-integer range (it can then match nothing). */
  readonly value: number;
}

/** All rule rows a snapshot knows of. Immutable once built. */
export interface RuleTable {
  /** Contract-keeping rule rows, whatever their state. */
  readonly rules: ReadonlyMap<number, RuleEntry>;
  /** Contract-keeping properties with state = 1 and is_deleted = 0. */
  readonly properties: ReadonlyMap<number, PropertyEntry>;
  /** Rule rows that break the contract: id → reason. */
  readonly skippedRules: ReadonlyMap<number, string>;
  /** Property rows that break the contract: id → reason. */
  readonly skippedProperties: ReadonlyMap<number, string>;
  /** Largest `mtime` seen, epoch ms (0 for an empty table): the incremental refresh starts from it. */
  readonly maxMtimeMs: number;
}

const ACTIONS: ReadonlySet<string> = new Set(RULE_ACTIONS);
const KINDS: ReadonlySet<string> = new Set(PROPERTY_KINDS);
const DIGITS = /^[0-9]+$/;

/** Why a rule row breaks the contract, or null when it keeps it. */
export function ruleRowProblem(row: RuleRow): string | null {
  if (!ACTIONS.has(row.action)) return `action ${JSON.stringify(row.action)} is not one of ${RULE_ACTIONS.join(", ")}`;
  if (row.minRatioBp > 10_000) return `min_ratio_bp ${row.minRatioBp} exceeds 10000`;
  if (!Number.isSafeInteger(row.id) || !Number.isSafeInteger(row.ownerId)) return "id or owner_id beyond 2^53";
  if (Number.isNaN(Number(row.minScore))) return `min_score ${JSON.stringify(row.minScore)} is not a number`;
  return null;
}

/** Why a property row breaks the contract, or null when it keeps it. */
export function propertyRowProblem(row: PropertyRow): string | null {
  if (!KINDS.has(row.kind)) return `kind ${JSON.stringify(row.kind)} is not one of ${PROPERTY_KINDS.join(", ")}`;
  if (!DIGITS.test(row.value)) return `value ${JSON.stringify(row.value)} is not a string of ASCII digits`;
  return null;
}

function decimalValue(text: string): number {
  const n = Number(text); // leading zeros are fine: "007" is 7
  return Number.isSafeInteger(n) ? n : -1;
}

/** A table under construction; `freeze` hands out the immutable view. */
export interface RuleTableBuilder {
  applyRule(row: RuleRow): void;
  applyProperty(row: PropertyRow): void;
  freeze(): RuleTable;
}

/**
 * Start a table: empty for a full load, or a copy of `base` for an incremental
 * refresh (the base is never modified: the old snapshot keeps serving).
 */
export function createRuleTableBuilder(base?: RuleTable): RuleTableBuilder {
  const rules = new Map(base?.rules);
  const properties = new Map(base?.properties);
  const skippedRules = new Map(base?.skippedRules);
  const skippedProperties = new Map(base?.skippedProperties);
  let maxMtimeMs = base?.maxMtimeMs ?? 0;
  let frozen = false;
  const assertOpen = () => {
    if (frozen) throw new Error("rule table is frozen");
  };
  return {
    applyRule(row) {
      assertOpen();
      if (row.mtimeMs > maxMtimeMs) maxMtimeMs = row.mtimeMs;
      const problem = ruleRowProblem(row);
      if (problem === null) {
        rules.set(row.id, row as RuleEntry);
        skippedRules.delete(row.id);
      } else {
        rules.delete(row.id);
        skippedRules.set(row.id, problem);
      }
    },
    applyProperty(row) {
      assertOpen();
      if (row.mtimeMs > maxMtimeMs) maxMtimeMs = row.mtimeMs;
      const problem = propertyRowProblem(row);
      if (problem !== null) {
        properties.delete(row.id);
        skippedProperties.set(row.id, problem);
        return;
      }
      skippedProperties.delete(row.id);
      if (row.state === 1 && row.isDeleted === 0) {
        properties.set(row.id, { ruleId: row.ruleId, kind: row.kind as PropertyKind, value: decimalValue(row.value) });
      } else {
        properties.delete(row.id);
      }
    },
    freeze() {
      frozen = true;
      return { rules, properties, skippedRules, skippedProperties, maxMtimeMs };
    },
  };
}
