/**
 * Read the rule tables into a snapshot with bounded memory: keyset pages of
 * `pageSize` rows, never a whole table as one result set. A full load reads
 * every row; an incremental one reads rows whose mtime moved since the last
 * load (soft deletes included: they move mtime too).
 */
import { and, asc, gt, gte, or, type SQL } from "drizzle-orm";
import type { MySqlColumn } from "drizzle-orm/mysql-core";
import { createRuleTableBuilder, type PropertyRow, type RuleRow } from "../match/rule-table.js";
import { compileSnapshot, type LoadKind, type RuleSnapshot } from "../match/snapshot.js";
import { describeDatabaseFailure, RuleStoreError, type RuleDatabase } from "./database.js";
import { videoTortRule, videoTortRuleProperty } from "./schema.js";

/** Rows per keyset page: the most rows held from one query (default). */
export const DEFAULT_PAGE_SIZE = 5_000;
/**
 * An incremental refresh re-reads rows whose mtime is this close below the
 * newest one it saw: rows written in the same instant, or committed a little
 * late, are not missed. Re-reading a row is harmless. Later stragglers are
 * caught by the periodic full reload.
 */
export const MTIME_OVERLAP_MS = 5_000;

/** `YYYY-MM-DD HH:MM:SS.mmm` (DATETIME text, UTC) → epoch ms. */
export function parseUtcDatetime(text: string): number {
  return Date.parse(`${text.replace(" ", "T")}Z`);
}

/** Epoch ms → DATETIME text in UTC (never a JS Date: mysql2 would apply the process time zone). */
export function formatUtcDatetime(ms: number): string {
  return new Date(ms).toISOString().replace("T", " ").replace("Z", "");
}

const ruleColumns = {
  id: videoTortRule.id,
  ownerId: videoTortRule.ownerId,
  action: videoTortRule.action,
  priority: videoTortRule.priority,
  minMatchedMs: videoTortRule.minMatchedMs,
  minRatioBp: videoTortRule.minRatioBp,
  minScore: videoTortRule.minScore,
  state: videoTortRule.state,
  validFrom: videoTortRule.validFrom,
  validTo: videoTortRule.validTo,
  isDeleted: videoTortRule.isDeleted,
  mtime: videoTortRule.mtime,
};

const propertyColumns = {
  id: videoTortRuleProperty.id,
  ruleId: videoTortRuleProperty.ruleId,
  kind: videoTortRuleProperty.kind,
  value: videoTortRuleProperty.value,
  state: videoTortRuleProperty.state,
  isDeleted: videoTortRuleProperty.isDeleted,
  mtime: videoTortRuleProperty.mtime,
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
  /** The clock for `loadedAt`; injectable for tests. */
  readonly now?: () => Date;
}

/** One table as the keyset reader sees it. */
interface KeysetSource<Row> {
  readonly name: LoadProgress["table"];
  readonly id: MySqlColumn;
  readonly mtime: MySqlColumn;
  readonly select: (where: SQL | undefined, order: SQL[], limit: number) => Promise<Row[]>;
}

/** Read one table page by page, handing each page to `apply` before the next is read. */
async function readPages<Row extends { id: number; mtime: string }>(
  t: KeysetSource<Row>,
  since: number | null,
  apply: (row: Row) => void,
  options: LoadOptions,
): Promise<number> {
  const pageSize = options.pageSize ?? DEFAULT_PAGE_SIZE;
  let rows = 0;
  let lastId = 0;
  let lastMtime = since === null ? "" : formatUtcDatetime(since);
  for (;;) {
    if (options.signal?.aborted) throw options.signal.reason ?? new Error("rule load aborted");
    // Full: by id. Incremental: by (mtime, id) from the watermark, on the mtime index.
    const where =
      since === null
        ? gt(t.id, lastId)
        : and(gte(t.mtime, lastMtime), or(gt(t.mtime, lastMtime), gt(t.id, lastId)));
    const order = since === null ? [asc(t.id)] : [asc(t.mtime), asc(t.id)];
    const page = await t.select(where, order, pageSize);
    for (const row of page) apply(row);
    rows += page.length;
    options.onProgress?.({ table: t.name, rows });
    if (page.length < pageSize) return rows;
    const last = page[page.length - 1]!;
    lastId = last.id;
    lastMtime = last.mtime;
  }
}

/** Reads rule snapshots from MySQL. */
export interface RuleLoader {
  /** Read both tables whole into a new snapshot. */
  loadFull(options?: LoadOptions): Promise<RuleSnapshot>;
  /** Apply the rows changed since `previous` was read; `previous` is left untouched. */
  loadChanges(previous: RuleSnapshot, options?: LoadOptions): Promise<RuleSnapshot>;
}

/** A loader over an open database; the database stays owned by the caller. */
export function createRuleLoader(database: RuleDatabase, defaults: LoadOptions = {}): RuleLoader {
  const { db } = database;
  const rules: KeysetSource<RuleSelect> = {
    name: "video_tort_rule",
    id: videoTortRule.id,
    mtime: videoTortRule.mtime,
    select: (where, order, limit) => db.select(ruleColumns).from(videoTortRule).where(where).orderBy(...order).limit(limit),
  };
  const properties: KeysetSource<PropertySelect> = {
    name: "video_tort_rule_property",
    id: videoTortRuleProperty.id,
    mtime: videoTortRuleProperty.mtime,
    select: (where, order, limit) =>
      db.select(propertyColumns).from(videoTortRuleProperty).where(where).orderBy(...order).limit(limit),
  };

  async function load(kind: LoadKind, previous: RuleSnapshot | null, options: LoadOptions): Promise<RuleSnapshot> {
    const opts = { ...defaults, ...options };
    const builder = createRuleTableBuilder(previous?.table);
    const since = previous === null ? null : Math.max(0, previous.table.maxMtimeMs - MTIME_OVERLAP_MS);
    try {
      await readPages(rules, since, (r) => builder.applyRule(toRuleRow(r)), opts);
      await readPages(properties, since, (p) => builder.applyProperty(toPropertyRow(p)), opts);
    } catch (err) {
      if (opts.signal?.aborted) throw err;
      throw new RuleStoreError(`loading rules (${kind}) from ${database.describe} failed: ${describeDatabaseFailure(err)}`, {
        cause: err,
      });
    }
    const loadedAt = (opts.now?.() ?? new Date()).toISOString();
    return compileSnapshot(builder.freeze(), { loadKind: kind, loadedAt });
  }

  return {
    loadFull: (options = {}) => load("full", null, options),
    loadChanges: (previous, options = {}) => load("incremental", previous, options),
  };
}

type RuleSelect = Pick<typeof videoTortRule.$inferSelect, keyof typeof ruleColumns>;
type PropertySelect = Pick<typeof videoTortRuleProperty.$inferSelect, keyof typeof propertyColumns>;

function toRuleRow(r: RuleSelect): RuleRow {
  return {
    id: r.id,
    ownerId: r.ownerId,
    action: r.action,
    priority: r.priority,
    minMatchedMs: r.minMatchedMs,
    minRatioBp: r.minRatioBp,
    minScore: r.minScore,
    state: r.state,
    validFromMs: r.validFrom === null ? null : parseUtcDatetime(r.validFrom),
    validToMs: r.validTo === null ? null : parseUtcDatetime(r.validTo),
    isDeleted: r.isDeleted,
    mtimeMs: parseUtcDatetime(r.mtime),
  };
}

function toPropertyRow(p: PropertySelect): PropertyRow {
  return {
    id: p.id,
    ruleId: p.ruleId,
    kind: p.kind,
    value: p.value,
    state: p.state,
    isDeleted: p.isDeleted,
    mtimeMs: parseUtcDatetime(p.mtime),
  };
}
