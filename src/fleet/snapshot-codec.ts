/**
 * The compact binary form of a rule snapshot, as the fleet's leader writes it
 * to the Object Store and followers read it back (spec section 9): the rows a
 * snapshot was compiled from, as typed-array columns, deflated, behind a
 * fixed header with a SHA-256 of the body. Reading it back compiles the same
 * snapshot without MySQL, and checks that the compiled version is the one the
 * header names. No I/O; deflate and inflate run on libuv's thread pool, so
 * the event loop keeps settling messages while a leader encodes (a 1 MB
 * snapshot takes about 20 ms to deflate) or a follower decodes.
 *
 * Layout (little-endian):
 *   0  "TORTSNAP"             magic, 8 bytes
 *   8  u32 format             SNAPSHOT_FORMAT
 *  12  u32 body length        deflated bytes that follow the header
 *  16  f64 raw length         the body's length once inflated
 *  24  32 bytes               SHA-256 of the deflated body
 *  56  body                   deflate(raw)
 * raw:
 *   u32 meta length, meta JSON (UTF-8), zero padding to a multiple of 8, then
 *   rules:      f64 columns id, ownerId, priority, minMatchedMs, minRatioBp, state,
 *               validFromMs (NaN = none), validToMs (NaN = none), isDeleted, mtimeMs;
 *               u8 column action (index in RULE_ACTIONS); min_score texts are in meta
 *   properties: f64 columns id, ruleId and mtime as deltas from the previous row, value; u8 kind
 * Deltas make the id and mtime columns mostly zero bytes, which deflate folds away.
 *
 * Nothing read is trusted (spec section 9): every length in the header and the meta is checked to
 * be a finite integer within its limit before anything is allocated or inflated, and inflating is
 * bounded by the length the header declares.
 */
import { createHash } from "node:crypto";
import { promisify } from "node:util";
import { deflate as deflateCallback, inflate as inflateCallback } from "node:zlib";
import { compileSnapshot, type LoadKind, type RuleSnapshot } from "../match/snapshot.js";
import { NO_PROPERTY, type PropertyColumns, type RuleEntry, type RuleTable } from "../match/rule-table.js";
import { RULE_ACTIONS } from "../match/types.js";
import { PROPERTY_ROW_BYTES, RULE_ROW_BYTES, SnapshotOverBudgetError } from "../match/snapshot-budget.js";

/** 3: the meta carries the value texts the property columns do not say back (RuleTable.valueTexts). */
export const SNAPSHOT_FORMAT = 3;
const MAGIC = "TORTSNAP";
export const SNAPSHOT_HEADER_BYTES = 56;
const HEADER_BYTES = SNAPSHOT_HEADER_BYTES;
const RULE_F64_COLUMNS = 10;
/** Bytes a property row takes in the raw form: four f64 columns and a u8. */
const PROPERTY_RAW_BYTES = 4 * 8 + 1;
/** The most the raw form may declare when the caller sets no limit (2 GiB). */
const DEFAULT_MAX_RAW_BYTES = 2 ** 31;

/** The bytes are not a snapshot this build can read: wrong magic, format, length or checksum. */
export class SnapshotFormatError extends Error {
  override name = "SnapshotFormatError";
}

/** What the meta section carries besides the columns. */
interface SnapshotMeta {
  readonly version: string;
  readonly loadKind: LoadKind;
  readonly loadedAt: string;
  readonly maxMtimeMs: number;
  readonly rules: number;
  readonly properties: number;
  /** min_score texts of the rules, in column order. */
  readonly minScores: readonly string[];
  /** id, reason, mtime ms. */
  readonly skippedRules: readonly (readonly [number, string, number])[];
  readonly skippedProperties: readonly (readonly [number, string])[];
  /** Counting properties' value texts their numbers do not say back (RuleTable.valueTexts). */
  readonly valueTexts: readonly (readonly [number, string])[];
}

/** What an encoded snapshot says about itself without being decoded. */
export interface SnapshotHeader {
  readonly format: number;
  readonly bodyBytes: number;
  readonly rawBytes: number;
  readonly sha256: string;
}

const deflate = promisify(deflateCallback);
const inflate = promisify(inflateCallback);
const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest();

/** Serialise a snapshot (its rule rows; the index is rebuilt on reading). */
export async function encodeSnapshot(snapshot: RuleSnapshot, options: { level?: number } = {}): Promise<Uint8Array> {
  const table = snapshot.table;
  const rules = [...table.rules.values()];
  const p = table.properties;
  const meta: SnapshotMeta = {
    version: snapshot.version,
    loadKind: snapshot.loadKind,
    loadedAt: snapshot.loadedAt,
    maxMtimeMs: table.maxMtimeMs,
    rules: rules.length,
    properties: p.length,
    minScores: rules.map((r) => r.minScore),
    skippedRules: [...table.skippedRules].map(([id, { reason, mtimeMs }]) => [id, reason, mtimeMs] as const),
    skippedProperties: [...table.skippedProperties],
    valueTexts: [...table.valueTexts],
  };
  const metaBytes = Buffer.from(JSON.stringify(meta), "utf8");
  const metaEnd = align8(4 + metaBytes.length);
  const rulesBytes = rules.length * (RULE_F64_COLUMNS * 8 + 1);
  const rulesEnd = align8(metaEnd + rulesBytes);
  const rawLength = rulesEnd + p.length * PROPERTY_RAW_BYTES;
  const raw = new Uint8Array(rawLength);
  const view = new DataView(raw.buffer);
  view.setUint32(0, metaBytes.length, true);
  raw.set(metaBytes, 4);

  const f64 = new Float64Array(raw.buffer, metaEnd, rules.length * RULE_F64_COLUMNS);
  const columns: ((r: RuleEntry) => number)[] = [
    (r) => r.id,
    (r) => r.ownerId,
    (r) => r.priority,
    (r) => r.minMatchedMs,
    (r) => r.minRatioBp,
    (r) => r.state,
    (r) => r.validFromMs ?? Number.NaN,
    (r) => r.validToMs ?? Number.NaN,
    (r) => r.isDeleted,
    (r) => r.mtimeMs,
  ];
  columns.forEach((get, c) => rules.forEach((r, i) => (f64[c * rules.length + i] = get(r))));
  const actions = new Uint8Array(raw.buffer, metaEnd + rules.length * RULE_F64_COLUMNS * 8, rules.length);
  rules.forEach((r, i) => (actions[i] = RULE_ACTIONS.indexOf(r.action)));

  const n = p.length;
  const props = new Float64Array(raw.buffer, rulesEnd, 4 * n);
  let prevId = 0;
  let prevRule = 0;
  let prevMtime = 0;
  for (let i = 0; i < n; i++) {
    props[i] = p.id[i]! - prevId;
    props[n + i] = p.ruleId[i]! - prevRule;
    props[3 * n + i] = p.mtime[i]! - prevMtime;
    prevId = p.id[i]!;
    prevRule = p.ruleId[i]!;
    prevMtime = p.mtime[i]!;
  }
  props.set(p.value, 2 * n);
  raw.set(p.kind, rulesEnd + 4 * n * 8);

  const body = await deflate(raw, { level: options.level ?? 6 });
  const out = new Uint8Array(HEADER_BYTES + body.length);
  const header = new DataView(out.buffer);
  out.set(Buffer.from(MAGIC, "latin1"), 0);
  header.setUint32(8, SNAPSHOT_FORMAT, true);
  header.setUint32(12, body.length, true);
  header.setFloat64(16, rawLength, true);
  out.set(sha256(body), 24);
  out.set(body, HEADER_BYTES);
  return out;
}

const isCount = (x: unknown, max: number): x is number => typeof x === "number" && Number.isSafeInteger(x) && x >= 0 && x <= max;

/**
 * The header of an encoded snapshot, checked for magic, format and lengths (not the checksum): the
 * raw length must be a finite integer no larger than `maxRawBytes` (a NaN passes no `>` test).
 */
export function readSnapshotHeader(bytes: Uint8Array, maxRawBytes = DEFAULT_MAX_RAW_BYTES): SnapshotHeader {
  if (bytes.length < HEADER_BYTES || Buffer.from(bytes.subarray(0, 8)).toString("latin1") !== MAGIC) {
    throw new SnapshotFormatError("not a tortmatch rule snapshot (bad magic)");
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const format = view.getUint32(8, true);
  if (format !== SNAPSHOT_FORMAT) throw new SnapshotFormatError(`snapshot format ${format}; this build reads format ${SNAPSHOT_FORMAT}`);
  const bodyBytes = view.getUint32(12, true);
  if (bodyBytes !== bytes.length - HEADER_BYTES) {
    throw new SnapshotFormatError(`snapshot body is ${bytes.length - HEADER_BYTES} bytes; the header says ${bodyBytes}`);
  }
  const rawBytes = view.getFloat64(16, true);
  if (!isCount(rawBytes, Number.MAX_SAFE_INTEGER)) throw new SnapshotFormatError(`snapshot declares it inflates to ${rawBytes} bytes: not a whole number of bytes`);
  if (rawBytes > maxRawBytes) throw new SnapshotFormatError(`snapshot inflates to ${rawBytes} bytes, more than the ${maxRawBytes} allowed`);
  return { format, bodyBytes, rawBytes, sha256: Buffer.from(bytes.subarray(24, HEADER_BYTES)).toString("hex") };
}

/** The rule rows from their columns (ten Float64 columns, then one action code a rule). */
function readRuleColumns(raw: Uint8Array, at: number, r: number, minScores: SnapshotMeta["minScores"]): Map<number, RuleEntry> {
  const f64 = new Float64Array(raw.buffer, raw.byteOffset + at, r * RULE_F64_COLUMNS);
  const actions = raw.subarray(at + r * RULE_F64_COLUMNS * 8, at + r * (RULE_F64_COLUMNS * 8 + 1));
  const col = (c: number, i: number) => f64[c * r + i]!;
  const orNull = (x: number) => (Number.isNaN(x) ? null : x);
  const rules = new Map<number, RuleEntry>();
  for (let i = 0; i < r; i++) {
    const action = RULE_ACTIONS[actions[i]!];
    if (action === undefined) throw new SnapshotFormatError(`snapshot rule ${col(0, i)} has action code ${actions[i]}`);
    rules.set(col(0, i), {
      id: col(0, i),
      ownerId: col(1, i),
      action,
      priority: col(2, i),
      minMatchedMs: col(3, i),
      minRatioBp: col(4, i),
      minScore: minScores[i]!,
      state: col(5, i),
      validFromMs: orNull(col(6, i)),
      validToMs: orNull(col(7, i)),
      isDeleted: col(8, i),
      mtimeMs: col(9, i),
    });
  }
  return rules;
}

/** The property rows from their columns (id, rule id and mtime as deltas, the value, then one kind byte a row). */
function readPropertyColumns(raw: Uint8Array, at: number, n: number): { properties: PropertyColumns; countingProperties: number } {
  const props = new Float64Array(raw.buffer, raw.byteOffset + at, 4 * n);
  const properties: PropertyColumns = {
    length: n,
    id: new Float64Array(n),
    ruleId: new Float64Array(n),
    kind: raw.slice(at + 4 * n * 8, at + 4 * n * 8 + n),
    value: props.slice(2 * n, 3 * n),
    mtime: new Float64Array(n),
  };
  let countingProperties = 0;
  for (let i = 0, id = 0, rule = 0, mtime = 0; i < n; i++) {
    id += props[i]!;
    rule += props[n + i]!;
    mtime += props[3 * n + i]!;
    properties.id[i] = id;
    properties.ruleId[i] = rule;
    properties.mtime[i] = mtime;
    if (properties.kind[i] !== NO_PROPERTY) countingProperties++;
  }
  return { properties, countingProperties };
}

/**
 * Rebuild a snapshot from its encoded form: checksum first, then inflate (at
 * most `maxRawBytes`), then the columns, then compile and check the version.
 */
export async function decodeSnapshot(bytes: Uint8Array, options: { maxRawBytes?: number; maxSnapshotBytes?: number } = {}): Promise<RuleSnapshot> {
  const header = readSnapshotHeader(bytes, options.maxRawBytes ?? DEFAULT_MAX_RAW_BYTES);
  const body = bytes.subarray(HEADER_BYTES);
  if (sha256(body).toString("hex") !== header.sha256) throw new SnapshotFormatError("snapshot checksum mismatch: the object is corrupt");
  let raw: Uint8Array;
  try {
    raw = await inflate(body, { maxOutputLength: Math.max(1, header.rawBytes) });
  } catch (err) {
    throw new SnapshotFormatError(`snapshot body does not inflate: ${(err as Error).message}`);
  }
  if (raw.length !== header.rawBytes) throw new SnapshotFormatError(`snapshot body inflates to ${raw.length} bytes; the header says ${header.rawBytes}`);
  // A plain Uint8Array (columns cut from it must not be Buffers), 8-aligned for the Float64 views.
  raw = raw.byteOffset % 8 === 0 ? new Uint8Array(raw.buffer, raw.byteOffset, raw.length) : new Uint8Array(raw);
  if (raw.length < 4) throw new SnapshotFormatError("snapshot body is too short for its meta length");
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const metaLength = view.getUint32(0, true);
  if (metaLength > raw.length - 4) throw new SnapshotFormatError(`snapshot meta is ${metaLength} bytes, more than the body holds`);
  let meta: SnapshotMeta;
  try {
    meta = JSON.parse(Buffer.from(raw.buffer, raw.byteOffset + 4, metaLength).toString("utf8")) as SnapshotMeta;
  } catch (err) {
    throw new SnapshotFormatError(`snapshot meta is not JSON: ${(err as Error).message}`);
  }
  const problem = metaProblem(meta, raw.length);
  if (problem !== null) throw new SnapshotFormatError(`snapshot meta is not valid: ${problem}`);
  const metaEnd = align8(4 + metaLength);
  const r = meta.rules;
  const n = meta.properties;
  const rulesEnd = align8(metaEnd + r * (RULE_F64_COLUMNS * 8 + 1));
  if (rulesEnd + n * PROPERTY_RAW_BYTES !== raw.length) throw new SnapshotFormatError("snapshot columns do not add up to its length");
  // The memory budget of the rule snapshot (TORT_SNAPSHOT_MAX_MB), as a database load checks it: before anything is built.
  const estimate = r * RULE_ROW_BYTES + n * PROPERTY_ROW_BYTES;
  if (options.maxSnapshotBytes !== undefined && estimate > options.maxSnapshotBytes) {
    throw new SnapshotOverBudgetError({ rules: r, properties: n }, estimate, options.maxSnapshotBytes);
  }

  const rules = readRuleColumns(raw, metaEnd, r, meta.minScores);
  const { properties, countingProperties } = readPropertyColumns(raw, rulesEnd, n);
  const table: RuleTable = {
    rules,
    properties,
    countingProperties,
    skippedRules: new Map(meta.skippedRules.map(([id, reason, mtimeMs]) => [id, { reason, mtimeMs }])),
    skippedProperties: new Map(meta.skippedProperties),
    valueTexts: new Map(meta.valueTexts),
    maxMtimeMs: meta.maxMtimeMs,
  };
  const snapshot = compileSnapshot(table, { loadKind: meta.loadKind, loadedAt: meta.loadedAt });
  if (snapshot.version !== meta.version) {
    throw new SnapshotFormatError(`snapshot compiles to version ${snapshot.version}, not the ${meta.version} it names`);
  }
  return snapshot;
}

/** Why the meta cannot describe a body of `rawLength` bytes, or null: every field typed, every count an integer within it. */
function metaProblem(meta: SnapshotMeta, rawLength: number): string | null {
  if (meta === null || typeof meta !== "object") return "not an object";
  if (typeof meta.version !== "string" || meta.version.length > 256) return "version";
  if (meta.loadKind !== "full" && meta.loadKind !== "incremental") return "loadKind";
  if (typeof meta.loadedAt !== "string" || meta.loadedAt.length > 64) return "loadedAt";
  if (typeof meta.maxMtimeMs !== "number" || !Number.isFinite(meta.maxMtimeMs)) return "maxMtimeMs";
  if (!isCount(meta.rules, rawLength) || !isCount(meta.properties, rawLength)) return "row counts";
  if (!Array.isArray(meta.minScores) || meta.minScores.length !== meta.rules || !meta.minScores.every((x) => typeof x === "string")) return "minScores";
  const pairs = (rows: unknown, width: number, typed: (row: readonly unknown[]) => boolean) =>
    Array.isArray(rows) && rows.length <= rawLength && rows.every((row) => Array.isArray(row) && row.length === width && isCount(row[0], Number.MAX_SAFE_INTEGER) && typed(row));
  if (!pairs(meta.skippedRules, 3, (row) => typeof row[1] === "string" && typeof row[2] === "number" && Number.isFinite(row[2]))) return "skippedRules";
  if (!pairs(meta.skippedProperties, 2, (row) => typeof row[1] === "string")) return "skippedProperties";
  if (!pairs(meta.valueTexts, 2, (row) => typeof row[1] === "string" && row[1].length <= 64)) return "valueTexts";
  return null;
}

function align8(n: number): number {
  return (n + 7) & ~7;
}
