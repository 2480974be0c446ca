/**
 * Read the rule tables into a snapshot with bounded memory: keyset pages of
 * `pageSize` rows, never a whole table as one result set. A full load reads
 * every row; an incremental one reads rows whose mtime moved since the last
 * load (soft deletes included: they move mtime too).
 *
 * drizzle builds each keyset query from the schema; mysql2 runs it as a
 * prepared statement with `rowsAsArray`. drizzle's own execution adds a
 * per-field typeCast callback that tripled the read time of the 180k-row
 * table (bench/load).
 */
import { and, asc, gt, gte, or, sql, type SQL } from "drizzle-orm";
import type { MySqlColumn } from "drizzle-orm/mysql-core";
import type { PoolConnection } from "mysql2/promise";
import { createRuleTableBuilder, ROW_SUM_FACTOR, ROW_SUM_MODULUS, tableRowSums, type PropertyRow, type RuleRow } from "../match/rule-table.js";
import { compileSnapshot, type LoadKind, type RuleSnapshot } from "../match/snapshot.js";
import { PROPERTY_ROW_BYTES, RULE_ROW_BYTES, SnapshotOverBudgetError } from "../match/snapshot-budget.js";
import { describeDatabaseFailure, RuleStoreError, type RuleDatabase } from "./database.js";
import { videoTortRule, videoTortRuleProperty } from "./schema.js";

/** Rows per keyset page (default). At most two pages per table are held at once: one applied, one prefetched. */
export const DEFAULT_PAGE_SIZE = 20_000;
/**
 * An incremental refresh re-reads rows whose mtime is this close below the
 * newest one it saw: rows written in the same instant, or committed a little
 * late, are not missed. Re-reading a row is harmless. Later stragglers (an
 * edit committed long after its mtime) are caught by the row sums compared
 * after every incremental read, which then reads everything.
 */
export const MTIME_OVERLAP_MS = 5_000;

let lastDatetimeText = "";
let lastDatetimeMs = Number.NaN;
const digit = (text: string, at: number) => text.charCodeAt(at) - 48;
const digits = (text: string, at: number, n: number) => {
  let v = 0;
  for (let k = 0; k < n; k++) v = v * 10 + digit(text, at + k);
  return v;
};

/**
 * `YYYY-MM-DD HH:MM:SS[.fff]` (DATETIME text, UTC) → epoch ms. On the load's
 * hot path: rows written together share an mtime, so the last answer is kept.
 */
export function parseUtcDatetime(text: string): number {
  if (text === lastDatetimeText) return lastDatetimeMs;
  const fraction = text.length > 20 ? digits(`${text.slice(20)}00`, 0, 3) : 0;
  const ms = Date.UTC(
    digits(text, 0, 4), digits(text, 5, 2) - 1, digits(text, 8, 2),
    digits(text, 11, 2), digits(text, 14, 2), digits(text, 17, 2), fraction,
  );
  lastDatetimeText = text;
  lastDatetimeMs = ms;
  return ms;
}

/** Epoch ms → DATETIME text in UTC (never a JS Date: mysql2 would apply the process time zone). */
export function formatUtcDatetime(ms: number): string {
  return new Date(ms).toISOString().replace("T", " ").replace("Z", "");
}

/** A row's mtime as epoch ms, computed by MySQL (no DATETIME text to parse per row, whatever the session's time zone). */
const mtimeMs = (column: MySqlColumn): SQL<number> => sql<number>`CAST(TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', ${column}) DIV 1000 AS DOUBLE)`;

const ruleColumns = {
  id: videoTortRule.id,
  ownerId: videoTortRule.ownerId,
  action: videoTortRule.action,
  priority: videoTortRule.priority,
  minMatchedMs: videoTortRule.minMatchedMs,
  minRatioBp: videoTortRule.minRatioBp,
  minScore: videoTortRule.minScore,
  state: videoTortRule.state,
  isDeleted: videoTortRule.isDeleted,
  validFrom: videoTortRule.validFrom,
  validTo: videoTortRule.validTo,
  mtime: mtimeMs(videoTortRule.mtime),
};

const propertyColumns = {
  id: videoTortRuleProperty.id,
  ruleId: videoTortRuleProperty.ruleId,
  kind: videoTortRuleProperty.kind,
  value: videoTortRuleProperty.value,
  state: videoTortRuleProperty.state,
  isDeleted: videoTortRuleProperty.isDeleted,
  mtime: mtimeMs(videoTortRuleProperty.mtime),
};

/** How far a load has got, for progress bars and logs. */
export interface LoadProgress {
  readonly table: "video_tort_rule" | "video_tort_rule_property";
  readonly rows: number;
}

export interface LoadOptions {
  readonly pageSize?: number;
  /** Aborts between pages (the rule-cache actor aborts when it stops). */
  readonly signal?: AbortSignal;
  readonly onProgress?: (progress: LoadProgress) => void;
  /** Told the rows of each page read, whatever the table (the fleet's "one read per version" is counted with it). */
  readonly onRowsRead?: (rows: number) => void;
  /** The clock for `loadedAt`; injectable for tests. */
  readonly now?: () => Date;
  /** The snapshot's memory budget, bytes: a load whose estimate passes it is abandoned while it is read (checked per page). */
  readonly maxBytes?: number;
  /**
   * Told when an incremental refresh found other row counts or row sums in the tables than in its
   * snapshot (rows deleted outright, or an edit committed long after its mtime) and read everything instead.
   */
  readonly onMissedRows?: (sums: { expected: ReturnType<typeof tableRowSums>; found: ReturnType<typeof tableRowSums> }) => void;
}

/** One table as the keyset reader sees it: rows come as arrays in `columns` order. */
interface KeysetSource {
  readonly name: LoadProgress["table"];
  readonly table: typeof videoTortRule | typeof videoTortRuleProperty;
  /** What is selected, in row order; `mtime` is the row's mtime in epoch ms. */
  readonly columns: Record<string, MySqlColumn | SQL<number>>;
  /** The id and mtime columns themselves, for the keyset. */
  readonly id: MySqlColumn;
  readonly mtime: MySqlColumn;
  /** Positions of id and mtime in a row. */
  readonly idAt: number;
  readonly mtimeAt: number;
}

/** What a load runs its queries on: one connection, in one consistent snapshot of both tables. */
type Reader = Pick<PoolConnection, "execute" | "query">;

/** Read one table page by page, handing each row to `apply`; the next page is fetched while one is applied. */
async function readPages(
  database: RuleDatabase,
  reader: Reader,
  t: KeysetSource,
  since: number | null,
  apply: (row: unknown[]) => void,
  options: LoadOptions,
  /** Called after each page is applied (the memory budget's check); may throw to stop the read. */
  afterPage?: (rows: number) => void,
): Promise<number> {
  const pageSize = options.pageSize ?? DEFAULT_PAGE_SIZE;
  const { id, mtime } = t;
  const fetchPage = async (lastId: number, lastMtime: string): Promise<unknown[][]> => {
    if (options.signal?.aborted) throw options.signal.reason ?? new Error("rule load aborted");
    // Full: by id. Incremental: by (mtime, id) from the watermark, on the mtime index.
    const query = database.db
      .select(t.columns)
      .from(t.table)
      .where(since === null ? gt(id, lastId) : and(gte(mtime, lastMtime), or(gt(mtime, lastMtime), gt(id, lastId))))
      .orderBy(...(since === null ? [asc(id)] : [asc(mtime), asc(id)]))
      .limit(pageSize)
      .toSQL();
    // A prepared statement (the binary protocol: numbers arrive as binary, not as text to parse): the
    // property table reads in about 0.7x the time of the same pages as text (bench:load). The mtime
    // arrives as a number (mtimeMs above), never as a DATETIME for mysql2 to turn into text.
    const [rows] = await reader.execute({ sql: query.sql, rowsAsArray: true }, query.params as (number | string)[]);
    return rows as unknown[][];
  };
  let rows = 0;
  let next: Promise<unknown[][]> | null = fetchPage(0, since === null ? "" : formatUtcDatetime(since));
  while (next !== null) {
    const page: unknown[][] = await next;
    const last = page[page.length - 1];
    next = page.length === pageSize ? fetchPage(last![t.idAt] as number, formatUtcDatetime(Number(last![t.mtimeAt]))) : null;
    next?.catch(() => {}); // a failure surfaces when it is awaited; never as an unhandled rejection meanwhile
    for (const row of page) apply(row);
    rows += page.length;
    options.onRowsRead?.(page.length);
    options.onProgress?.({ table: t.name, rows });
    afterPage?.(page.length);
  }
  return rows;
}

/** The row counts and row sums (match/rule-table.ts `tableRowSums`) of both rule tables as they are now, computed by MySQL. */
async function tableRowSumsNow(database: RuleDatabase, reader: Reader, kind: LoadKind): Promise<ReturnType<typeof tableRowSums>> {
  const term = `((id MOD ${ROW_SUM_MODULUS}) * ${ROW_SUM_FACTOR} + (TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', mtime) DIV 1000) MOD ${ROW_SUM_MODULUS}) MOD ${ROW_SUM_MODULUS}`;
  const of = (table: string) => `SELECT COUNT(*), COALESCE(SUM(${term}), 0) FROM ${table}`;
  try {
    const [rows] = (await reader.query({
      sql: `${of("video_tort_rule")} UNION ALL ${of("video_tort_rule_property")}`,
      rowsAsArray: true,
    })) as unknown as [[number | string, number | string][]];
    const [rules, properties] = rows;
    return { ruleRows: Number(rules![0]), rules: Number(rules![1]), propertyRows: Number(properties![0]), properties: Number(properties![1]) };
  } catch (err) {
    throw new RuleStoreError(`loading rules (${kind}) from ${database.describe} failed: ${describeDatabaseFailure(err)}`, { cause: err });
  }
}

/** Reads rule snapshots from MySQL. */
export interface RuleLoader {
  /** Read both tables whole into a new snapshot. */
  loadFull(options?: LoadOptions): Promise<RuleSnapshot>;
  /**
   * Apply the rows changed since `previous` was read; `previous` is left
   * untouched. When rows were deleted outright (the row counts disagree),
   * this is a full load instead.
   */
  loadChanges(previous: RuleSnapshot, options?: LoadOptions): Promise<RuleSnapshot>;
}

/**
 * The memory budget of one load, checked per page: rows so far (an incremental refresh starts from
 * its base) times the cost per row. Past the budget, the page's read throws SnapshotOverBudgetError
 * and `signal` stops the other table's read at its next page.
 */
function pageBudget(previous: RuleSnapshot | null, opts: LoadOptions) {
  const rowsSoFar = { rules: previous?.table.rules.size ?? 0, properties: previous?.table.properties.length ?? 0 };
  const overBudget = new AbortController();
  return {
    signal: opts.signal ? AbortSignal.any([opts.signal, overBudget.signal]) : overBudget.signal,
    overBudget: overBudget.signal,
    check: (table: "rules" | "properties") => (n: number) => {
      rowsSoFar[table] += n;
      if (opts.maxBytes === undefined) return;
      const estimate = rowsSoFar.rules * RULE_ROW_BYTES + rowsSoFar.properties * PROPERTY_ROW_BYTES;
      if (estimate > opts.maxBytes) {
        const err = new SnapshotOverBudgetError({ ...rowsSoFar }, estimate, opts.maxBytes);
        overBudget.abort(err);
        throw err;
      }
    },
  };
}

/** A loader over an open database; the database stays owned by the caller. */
export function createRuleLoader(database: RuleDatabase, defaults: LoadOptions = {}): RuleLoader {
  const rules: KeysetSource = { name: "video_tort_rule", table: videoTortRule, columns: ruleColumns, id: videoTortRule.id, mtime: videoTortRule.mtime, idAt: 0, mtimeAt: 11 };
  const properties: KeysetSource = { name: "video_tort_rule_property", table: videoTortRuleProperty, columns: propertyColumns, id: videoTortRuleProperty.id, mtime: videoTortRuleProperty.mtime, idAt: 0, mtimeAt: 6 };

  /**
   * One load on one connection, in one consistent snapshot of both tables (REPEATABLE READ, `START
   * TRANSACTION WITH CONSISTENT SNAPSHOT`): a transaction that commits while the pages are read is
   * either wholly in the snapshot or wholly out of it, so a version never names rows the tables
   * never held together; the row sums below are read in the same snapshot.
   */
  async function load(kind: LoadKind, previous: RuleSnapshot | null, options: LoadOptions): Promise<RuleSnapshot> {
    let conn: PoolConnection;
    try {
      conn = await database.pool.getConnection();
      await conn.query("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY");
    } catch (err) {
      throw new RuleStoreError(`loading rules (${kind}) from ${database.describe} failed: ${describeDatabaseFailure(err)}`, { cause: err });
    }
    let result: RuleSnapshot | "full";
    try {
      result = await loadIn(conn, kind, previous, options);
      await conn.query("COMMIT");
      conn.release();
    } catch (err) {
      conn.destroy(); // whatever state it is in (a query cut mid-page), never back into the pool
      throw err;
    }
    return result === "full" ? load("full", null, options) : result;
  }

  async function loadIn(conn: Reader, kind: LoadKind, previous: RuleSnapshot | null, options: LoadOptions): Promise<RuleSnapshot | "full"> {
    const opts = { ...defaults, ...options };
    const builder = createRuleTableBuilder(previous?.table);
    if (previous === null) {
      // The newest mtime before any page is read: a row changed during the load lands above it.
      const [[row]] = (await conn.query({
        sql: "SELECT GREATEST(COALESCE((SELECT MAX(mtime) FROM video_tort_rule), '1970-01-01'), COALESCE((SELECT MAX(mtime) FROM video_tort_rule_property), '1970-01-01'))",
        rowsAsArray: true,
      }).catch((err: unknown) => {
        throw new RuleStoreError(`loading rules (${kind}) from ${database.describe} failed: ${describeDatabaseFailure(err)}`, { cause: err });
      })) as unknown as [[[string]]];
      builder.noteMtime(parseUtcDatetime(row![0]));
    }
    const scratchRow = { id: 0, ruleId: 0, kind: "", value: "", state: 0, isDeleted: 0, mtimeMs: 0 };
    const since = previous === null ? null : Math.max(0, previous.table.maxMtimeMs - MTIME_OVERLAP_MS);
    const budget = pageBudget(previous, opts);
    const readOpts = { ...opts, signal: budget.signal };
    const checkBudget = budget.check;
    try {
      // Both tables' pages interleaved on the load's connection; each row is applied as its page arrives.
      // Both reads settle before a failure is reported: nothing keeps running after the load ends.
      const reads = await Promise.allSettled([
        readPages(database, conn, rules, since, (r) => builder.applyRule(toRuleRow(r)), readOpts, checkBudget("rules")),
        readPages(database, conn, properties, since, (p) => builder.applyProperty(toPropertyRow(p, scratchRow)), readOpts, checkBudget("properties")),
      ]);
      for (const read of reads) if (read.status === "rejected") throw read.reason;
    } catch (err) {
      if (budget.overBudget.aborted) throw budget.overBudget.reason;
      if (opts.signal?.aborted) throw err;
      throw new RuleStoreError(`loading rules (${kind}) from ${database.describe} failed: ${describeDatabaseFailure(err)}`, {
        cause: err,
      });
    }
    const table = builder.freeze();
    if (previous !== null) {
      // Hard deletes (DELETE, not is_deleted) move no mtime, and an edit committed long after its
      // statement ran has an mtime below the watermark: an incremental read sees neither. The row
      // counts and row sums do: when the tables hold other ones than the patched snapshot, read everything.
      const found = await tableRowSumsNow(database, conn, kind);
      const expected = tableRowSums(table);
      if (found.ruleRows !== expected.ruleRows || found.propertyRows !== expected.propertyRows || found.rules !== expected.rules || found.properties !== expected.properties) {
        opts.onMissedRows?.({ expected, found });
        return "full";
      }
    }
    const loadedAt = (opts.now?.() ?? new Date()).toISOString();
    return compileSnapshot(table, { loadKind: kind, loadedAt });
  }

  return {
    loadFull: (options = {}) => load("full", null, options),
    loadChanges: (previous, options = {}) => load("incremental", previous, options),
  };
}

// Positions follow the key order of ruleColumns and propertyColumns.
function toRuleRow(r: unknown[]): RuleRow {
  const validFrom = r[9] as string | null;
  const validTo = r[10] as string | null;
  return {
    id: r[0] as number,
    ownerId: r[1] as number,
    action: r[2] as string,
    priority: r[3] as number,
    minMatchedMs: r[4] as number,
    minRatioBp: r[5] as number,
    minScore: r[6] as string,
    state: r[7] as number,
    validFromMs: validFrom === null ? null : parseUtcDatetime(validFrom),
    validToMs: validTo === null ? null : parseUtcDatetime(validTo),
    isDeleted: r[8] as number,
    mtimeMs: Number(r[11]),
  };
}

/** Fills `into` from a property row array; the builder copies what it keeps, so one object serves every row. */
function toPropertyRow(p: unknown[], into: { -readonly [K in keyof PropertyRow]: PropertyRow[K] }): PropertyRow {
  into.id = p[0] as number;
  into.ruleId = p[1] as number;
  into.kind = p[2] as string;
  into.value = p[3] as string;
  into.state = p[4] as number;
  into.isDeleted = p[5] as number;
  into.mtimeMs = Number(p[6]);
  return into;
}
