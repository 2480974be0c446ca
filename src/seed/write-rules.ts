/**
 * Replace the rule tables' contents with a generated dataset, in bounded batches, so that an
 * interruption (Ctrl-C, a lost connection) leaves the old tables or the new, never a mix: the rows
 * go into staging tables shaped like the real ones, which one RENAME TABLE (atomic in MySQL and
 * MariaDB) swaps in for both tables at once.
 */
import type { RuleDatabase } from "../rules/database.js";
import type { SeedProperty, SeedRule } from "./generate-dataset.js";

/** Rows per INSERT statement. */
export const INSERT_BATCH = 2_000;

const toDatetime = (iso: string | null) => (iso === null ? null : iso.replace("T", " ").replace("Z", ""));

async function insertBatches<T>(
  database: RuleDatabase,
  rows: Iterable<T>,
  statement: string,
  toValues: (row: T) => unknown[],
  onRows: (n: number) => void,
): Promise<number> {
  let batch: unknown[][] = [];
  let total = 0;
  const flush = async () => {
    if (batch.length === 0) return;
    await database.pool.query(statement, [batch]);
    total += batch.length;
    onRows(batch.length);
    batch = [];
  };
  for (const row of rows) {
    batch.push(toValues(row));
    if (batch.length === INSERT_BATCH) await flush();
  }
  await flush();
  return total;
}

const TABLES = ["video_tort_rule", "video_tort_rule_property"] as const;
const staging = (table: string) => `${table}__seeding`;
const retired = (table: string) => `${table}__replaced`;

/** Rows in the rule tables now. */
export async function ruleTableRows(database: RuleDatabase): Promise<{ rules: number; properties: number }> {
  const [[row]] = (await database.pool.query({
    sql: "SELECT (SELECT COUNT(*) FROM video_tort_rule), (SELECT COUNT(*) FROM video_tort_rule_property)",
    rowsAsArray: true,
  })) as unknown as [[[number | string, number | string]]];
  return { rules: Number(row![0]), properties: Number(row![1]) };
}

/** Write the rows into staging tables, then swap both in at once (the old rows are dropped after). */
export async function writeRules(
  database: RuleDatabase,
  rules: Iterable<SeedRule>,
  properties: Iterable<SeedProperty>,
  onRows: (n: number) => void = () => {},
): Promise<{ rules: number; properties: number }> {
  // Left over from an interrupted run: never in use.
  for (const t of TABLES) await database.pool.query(`DROP TABLE IF EXISTS ${staging(t)}, ${retired(t)}`);
  for (const t of TABLES) await database.pool.query(`CREATE TABLE ${staging(t)} LIKE ${t}`);
  const ruleCount = await insertBatches(
    database,
    rules,
    "INSERT INTO video_tort_rule__seeding (id, name, owner_id, action, priority, min_matched_ms, min_ratio_bp, min_score, state, valid_from, valid_to, is_deleted) VALUES ?",
    (r) => [r.id, r.name, r.owner_id, r.action, r.priority, r.min_matched_ms, r.min_ratio_bp, r.min_score, r.state, toDatetime(r.valid_from), toDatetime(r.valid_to), r.is_deleted],
    onRows,
  );
  const propertyCount = await insertBatches(
    database,
    properties,
    "INSERT INTO video_tort_rule_property__seeding (id, rule_id, kind, value, state, is_deleted) VALUES ?",
    (p) => [p.id, p.rule_id, p.kind, p.value, p.state, p.is_deleted],
    onRows,
  );
  // One statement: both tables are swapped, or neither.
  await database.pool.query(`RENAME TABLE ${TABLES.map((t) => `${t} TO ${retired(t)}, ${staging(t)} TO ${t}`).join(", ")}`);
  for (const t of TABLES) await database.pool.query(`DROP TABLE IF EXISTS ${retired(t)}`);
  return { rules: ruleCount, properties: propertyCount };
}
