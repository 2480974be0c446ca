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
 *   properties: f64 columns id and ruleId as deltas from the previous row, value; u8 kind
 * Deltas make the id columns mostly zero bytes, which deflate folds away.
 */
import { createHash } from "node:crypto";
import { promisify } from "node:util";
import { deflate as deflateCallback, inflate as inflateCallback } from "node:zlib";
import { compileSnapshot, type LoadKind, type RuleSnapshot } from "../match/snapshot.js";
import { NO_PROPERTY, type PropertyColumns, type RuleEntry, type RuleTable } from "../match/rule-table.js";
import { RULE_ACTIONS } from "../match/types.js";
import { PROPERTY_ROW_BYTES, RULE_ROW_BYTES, SnapshotOverBudgetError } from "../rules/load-rules.js";

export const SNAPSHOT_FORMAT = 1;
const MAGIC = "TORTSNAP";
const HEADER_BYTES = 56;
const RULE_F64_COLUMNS = 10;

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
  readonly skippedRules: readonly (readonly [number, string])[];
  readonly skippedProperties: readonly (readonly [number, string])[];
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
    skippedRules: [...table.skippedRules],
    skippedProperties: [...table.skippedProperties],
  };
  const metaBytes = Buffer.from(JSON.stringify(meta), "utf8");
  const metaEnd = align8(4 + metaBytes.length);
  const rulesBytes = rules.length * (RULE_F64_COLUMNS * 8 + 1);
  const rulesEnd = align8(metaEnd + rulesBytes);
  const rawLength = rulesEnd + p.length * (3 * 8 + 1);
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
  const props = new Float64Array(raw.buffer, rulesEnd, 3 * n);
  let prevId = 0;
  let prevRule = 0;
  for (let i = 0; i < n; i++) {
    props[i] = p.id[i]! - prevId;
    props[n + i] = p.ruleId[i]! - prevRule;
    prevId = p.id[i]!;
    prevRule = p.ruleId[i]!;
  }
  props.set(p.value, 2 * n);
  raw.set(p.kind, rulesEnd + 3 * n * 8);

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

/** The header of an encoded snapshot, checked for magic, format and length (not the checksum). */
export function readSnapshotHeader(bytes: Uint8Array): SnapshotHeader {
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
  return { format, bodyBytes, rawBytes, sha256: Buffer.from(bytes.subarray(24, HEADER_BYTES)).toString("hex") };
}

/**
 * Rebuild a snapshot from its encoded form: checksum first, then inflate (at
 * most `maxRawBytes`), then the columns, then compile and check the version.
 */
export async function decodeSnapshot(bytes: Uint8Array, options: { maxRawBytes?: number; maxSnapshotBytes?: number } = {}): Promise<RuleSnapshot> {
  const header = readSnapshotHeader(bytes);
  const body = bytes.subarray(HEADER_BYTES);
  if (sha256(body).toString("hex") !== header.sha256) throw new SnapshotFormatError("snapshot checksum mismatch: the object is corrupt");
  const maxRaw = options.maxRawBytes ?? 2 ** 31;
  if (header.rawBytes > maxRaw) throw new SnapshotFormatError(`snapshot inflates to ${header.rawBytes} bytes, more than the ${maxRaw} allowed`);
  let raw: Uint8Array;
  try {
    raw = await inflate(body, { maxOutputLength: Math.max(1, header.rawBytes) });
  } catch (err) {
    throw new SnapshotFormatError(`snapshot body does not inflate: ${(err as Error).message}`);
  }
  if (raw.length !== header.rawBytes) throw new SnapshotFormatError(`snapshot body inflates to ${raw.length} bytes; the header says ${header.rawBytes}`);
  // A plain Uint8Array (columns cut from it must not be Buffers), 8-aligned for the Float64 views.
  raw = raw.byteOffset % 8 === 0 ? new Uint8Array(raw.buffer, raw.byteOffset, raw.length) : new Uint8Array(raw);
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const metaLength = view.getUint32(0, true);
  let meta: SnapshotMeta;
  try {
    meta = JSON.parse(Buffer.from(raw.buffer, raw.byteOffset + 4, metaLength).toString("utf8")) as SnapshotMeta;
  } catch (err) {
    throw new SnapshotFormatError(`snapshot meta is not JSON: ${(err as Error).message}`);
  }
  const metaEnd = align8(4 + metaLength);
  const r = meta.rules;
  const n = meta.properties;
  const rulesEnd = align8(metaEnd + r * (RULE_F64_COLUMNS * 8 + 1));
  if (rulesEnd + n * 25 !== raw.length || meta.minScores.length !== r) throw new SnapshotFormatError("snapshot columns do not add up to its length");
  // The memory budget of the rule snapshot (TORT_SNAPSHOT_MAX_MB), as a database load checks it: before anything is built.
  const estimate = r * RULE_ROW_BYTES + n * PROPERTY_ROW_BYTES;
  if (options.maxSnapshotBytes !== undefined && estimate > options.maxSnapshotBytes) {
    throw new SnapshotOverBudgetError({ rules: r, properties: n }, estimate, options.maxSnapshotBytes);
  }

  const f64 = new Float64Array(raw.buffer, raw.byteOffset + metaEnd, r * RULE_F64_COLUMNS);
  const actions = raw.subarray(metaEnd + r * RULE_F64_COLUMNS * 8, metaEnd + r * (RULE_F64_COLUMNS * 8 + 1));
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
      minScore: meta.minScores[i]!,
      state: col(5, i),
      validFromMs: orNull(col(6, i)),
      validToMs: orNull(col(7, i)),
      isDeleted: col(8, i),
      mtimeMs: col(9, i),
    });
  }

  const props = new Float64Array(raw.buffer, raw.byteOffset + rulesEnd, 3 * n);
  const properties: PropertyColumns = {
    length: n,
    id: new Float64Array(n),
    ruleId: new Float64Array(n),
    kind: raw.slice(rulesEnd + 3 * n * 8, rulesEnd + 3 * n * 8 + n),
    value: props.slice(2 * n, 3 * n),
  };
  let countingProperties = 0;
  for (let i = 0, id = 0, rule = 0; i < n; i++) {
    id += props[i]!;
    rule += props[n + i]!;
    properties.id[i] = id;
    properties.ruleId[i] = rule;
    if (properties.kind[i] !== NO_PROPERTY) countingProperties++;
  }
  const table: RuleTable = {
    rules,
    properties,
    countingProperties,
    skippedRules: new Map(meta.skippedRules),
    skippedProperties: new Map(meta.skippedProperties),
    maxMtimeMs: meta.maxMtimeMs,
  };
  const snapshot = compileSnapshot(table, { loadKind: meta.loadKind, loadedAt: meta.loadedAt });
  if (snapshot.version !== meta.version) {
    throw new SnapshotFormatError(`snapshot compiles to version ${snapshot.version}, not the ${meta.version} it names`);
  }
  return snapshot;
}

function align8(n: number): number {
  return (n + 7) & ~7;
}
