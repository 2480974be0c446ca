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

/** Property kinds as stored in `PropertyColumns.kind`; NO_PROPERTY marks a row that does not count. */
export const KIND_CODE: Readonly<Record<PropertyKind, number>> = { asset: 0, zone: 1, exempt_mid: 2 };
export const NO_PROPERTY = 255;

/**
 * The property rows as columns, in ascending id order: no object and no Map
 * entry per row (a full load holds 180k of them). A row that does not count
 * (inactive, deleted or breaking the contract) has kind NO_PROPERTY.
 */
export interface PropertyColumns {
  readonly length: number;
  readonly id: Float64Array;
  readonly ruleId: Float64Array;
  readonly kind: Uint8Array;
  /** The decimal value; -1 when beyond the safe-integer range (it can then match nothing). */
  readonly value: Float64Array;
  /** The row's mtime, epoch ms: with the id, what names the row in the version and in the tables' row sum. */
  readonly mtime: Float64Array;
}

/** A rule row that breaks the contract: why, and its mtime (the row still counts in the tables' row sum). */
export interface SkippedRule {
  readonly reason: string;
  readonly mtimeMs: number;
}

/** All rule rows a snapshot knows of. Immutable once built. */
export interface RuleTable {
  /** Contract-keeping rule rows, whatever their state. */
  readonly rules: ReadonlyMap<number, RuleEntry>;
  /** Every property row read, counting or not. */
  readonly properties: PropertyColumns;
  /** Properties with state = 1, is_deleted = 0 that keep the contract. */
  readonly countingProperties: number;
  /** Rule rows that break the contract: id → reason and mtime. */
  readonly skippedRules: ReadonlyMap<number, SkippedRule>;
  /** Property rows that break the contract: id → reason. */
  readonly skippedProperties: ReadonlyMap<number, string>;
  /** Largest `mtime` seen, epoch ms (0 for an empty table): the incremental refresh starts from it. */
  readonly maxMtimeMs: number;
  /**
   * The value text of each counting property whose number does not say it back (leading zeros,
   * beyond the safe-integer range): id → text. The columns hold the number the matcher needs; the
   * version must name the text the row holds (spec section 5: every column).
   */
  readonly valueTexts: ReadonlyMap<number, string>;
}

const ACTIONS: ReadonlySet<string> = new Set(RULE_ACTIONS);
const KINDS: ReadonlySet<string> = new Set(PROPERTY_KINDS);
/** A non-empty string of ASCII digits (no sign, no spaces). */
function isAsciiDigits(text: string): boolean {
  if (text.length === 0) return false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

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
  if (!isAsciiDigits(row.value)) return `value ${JSON.stringify(row.value)} is not a string of ASCII digits`;
  return null;
}

function decimalValue(text: string): number {
  const n = Number(text); // leading zeros are fine: "007" is 7
  return Number.isSafeInteger(n) ? n : -1;
}

/** Growable columns; `take` hands them out trimmed. */
class ColumnsBuilder {
  length = 0;
  id: Float64Array;
  ruleId: Float64Array;
  kind: Uint8Array;
  value: Float64Array;
  mtime: Float64Array;

  constructor(capacity: number) {
    this.id = new Float64Array(capacity);
    this.ruleId = new Float64Array(capacity);
    this.kind = new Uint8Array(capacity);
    this.value = new Float64Array(capacity);
    this.mtime = new Float64Array(capacity);
  }

  push(id: number, ruleId: number, kind: number, value: number, mtime: number): void {
    if (this.length === this.id.length) this.grow();
    const i = this.length++;
    this.id[i] = id;
    this.ruleId[i] = ruleId;
    this.kind[i] = kind;
    this.value[i] = value;
    this.mtime[i] = mtime;
  }

  private grow(): void {
    const size = Math.max(1024, this.id.length * 2);
    const copy = <T extends Float64Array | Uint8Array>(a: T, make: (n: number) => T) => {
      const b = make(size);
      b.set(a);
      return b;
    };
    this.id = copy(this.id, (n) => new Float64Array(n));
    this.ruleId = copy(this.ruleId, (n) => new Float64Array(n));
    this.kind = copy(this.kind, (n) => new Uint8Array(n));
    this.value = copy(this.value, (n) => new Float64Array(n));
    this.mtime = copy(this.mtime, (n) => new Float64Array(n));
  }

  take(): PropertyColumns {
    const n = this.length;
    return { length: n, id: this.id.slice(0, n), ruleId: this.ruleId.slice(0, n), kind: this.kind.slice(0, n), value: this.value.slice(0, n), mtime: this.mtime.slice(0, n) };
  }
}

/** Index of `id` in ascending `ids[0..length)`, or -1. */
function findRow(ids: Float64Array, length: number, id: number): number {
  let lo = 0, hi = length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const x = ids[mid]!;
    if (x === id) return mid;
    if (x < id) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}

/** Stable order of rows by id; the last write of an id wins. */
function sortById(c: ColumnsBuilder): void {
  const order = Array.from({ length: c.length }, (_, i) => i).sort((a, b) => c.id[a]! - c.id[b]! || a - b);
  const src = { id: c.id.slice(0, c.length), ruleId: c.ruleId.slice(0, c.length), kind: c.kind.slice(0, c.length), value: c.value.slice(0, c.length), mtime: c.mtime.slice(0, c.length) };
  let n = 0;
  for (let k = 0; k < order.length; k++) {
    const i = order[k]!;
    if (k + 1 < order.length && src.id[order[k + 1]!] === src.id[i]) continue; // a later write of the same id follows
    c.id[n] = src.id[i]!;
    c.ruleId[n] = src.ruleId[i]!;
    c.kind[n] = src.kind[i]!;
    c.value[n] = src.value[i]!;
    c.mtime[n] = src.mtime[i]!;
    n++;
  }
  c.length = n;
}

/** A table under construction; `freeze` hands out the immutable view. */
export interface RuleTableBuilder {
  /** Keeps `row` itself: pass a fresh object. */
  applyRule(row: RuleRow): void;
  /** Copies what it keeps: `row` may be reused by the caller. */
  applyProperty(row: PropertyRow): void;
  /** Raise the newest mtime seen (a full load reads it once instead of per row). */
  noteMtime(mtimeMs: number): void;
  freeze(): RuleTable;
}

/**
 * Start a table: empty for a full load, or from `base` for an incremental
 * refresh (the base is never modified: the old snapshot keeps serving).
 */
export function createRuleTableBuilder(base?: RuleTable): RuleTableBuilder {
  const rules = new Map(base?.rules);
  const skippedRules = new Map(base?.skippedRules);
  const skippedProperties = new Map(base?.skippedProperties);
  const valueTexts = new Map(base?.valueTexts);
  let maxMtimeMs = base?.maxMtimeMs ?? 0;
  // A full load appends in id order; an incremental one patches a copy of the base.
  const columns = new ColumnsBuilder(Math.max(1024, base?.properties.length ?? 0));
  if (base !== undefined) {
    const p = base.properties;
    columns.id.set(p.id);
    columns.ruleId.set(p.ruleId);
    columns.kind.set(p.kind);
    columns.value.set(p.value);
    columns.mtime.set(p.mtime);
    columns.length = p.length;
  }
  const baseLength = columns.length;
  let sorted = true;
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
        skippedRules.set(row.id, { reason: problem, mtimeMs: row.mtimeMs });
      }
    },
    applyProperty(row) {
      assertOpen();
      if (row.mtimeMs > maxMtimeMs) maxMtimeMs = row.mtimeMs;
      const problem = propertyRowProblem(row);
      let kind = NO_PROPERTY;
      let value = -1;
      if (problem !== null) {
        skippedProperties.set(row.id, problem);
      } else {
        skippedProperties.delete(row.id);
        if (row.state === 1 && row.isDeleted === 0) {
          kind = KIND_CODE[row.kind as PropertyKind];
          value = decimalValue(row.value);
        }
      }
      if (kind !== NO_PROPERTY && String(value) !== row.value) valueTexts.set(row.id, row.value);
      else valueTexts.delete(row.id);
      const at = baseLength > 0 ? findRow(columns.id, baseLength, row.id) : -1;
      if (at !== -1) {
        columns.ruleId[at] = row.ruleId;
        columns.kind[at] = kind;
        columns.value[at] = value;
        columns.mtime[at] = row.mtimeMs;
        return;
      }
      if (columns.length > 0 && columns.id[columns.length - 1]! >= row.id) sorted = false;
      columns.push(row.id, row.ruleId, kind, value, row.mtimeMs);
    },
    noteMtime(mtimeMs) {
      assertOpen();
      if (mtimeMs > maxMtimeMs) maxMtimeMs = mtimeMs;
    },
    freeze() {
      frozen = true;
      if (!sorted) sortById(columns);
      const properties = columns.take();
      let countingProperties = 0;
      for (let i = 0; i < properties.length; i++) if (properties.kind[i] !== NO_PROPERTY) countingProperties++;
      return { rules, properties, countingProperties, skippedRules, skippedProperties, maxMtimeMs, valueTexts };
    },
  };
}

/**
 * The tables' row sums: Σ ((id mod P) × 1009 + (mtime ms mod P)) mod P over every row of a table,
 * skipped rows included. The same sum is computed by MySQL over the tables as they are now
 * (rules/load-rules.ts); when the two differ, a row changed that an incremental read did not see
 * (an edit committed later than its mtime, a row deleted outright) and the refresh reads everything.
 * Exact in doubles: a term is below 2^40 and the sum stays below 2^53 for billions of rows.
 */
export const ROW_SUM_MODULUS = 1_000_000_007;
export const ROW_SUM_FACTOR = 1009;

/** One row's term of the row sum. */
export function rowSumTerm(id: number, mtimeMs: number): number {
  return ((id % ROW_SUM_MODULUS) * ROW_SUM_FACTOR + (mtimeMs % ROW_SUM_MODULUS)) % ROW_SUM_MODULUS;
}

/** The row sums and row counts of a table, as MySQL would compute them over the rows it was built from. */
export function tableRowSums(table: RuleTable): { rules: number; properties: number; ruleRows: number; propertyRows: number } {
  let rules = 0;
  for (const r of table.rules.values()) rules += rowSumTerm(r.id, r.mtimeMs);
  for (const [id, s] of table.skippedRules) rules += rowSumTerm(id, s.mtimeMs);
  let properties = 0;
  const p = table.properties;
  for (let i = 0; i < p.length; i++) properties += rowSumTerm(p.id[i]!, p.mtime[i]!);
  return { rules, properties, ruleRows: table.rules.size + table.skippedRules.size, propertyRows: p.length };
}
