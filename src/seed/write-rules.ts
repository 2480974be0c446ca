/** Replace the rule tables' contents with a generated dataset, in bounded batches. */
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

/** Empty both tables, then insert the rows. */
export async function writeRules(
  database: RuleDatabase,
  rules: Iterable<SeedRule>,
  properties: Iterable<SeedProperty>,
  onRows: (n: number) => void = () => {},
): Promise<{ rules: number; properties: number }> {
  await database.pool.query("TRUNCATE TABLE video_tort_rule");
  await database.pool.query("TRUNCATE TABLE video_tort_rule_property");
  const ruleCount = await insertBatches(
    database,
    rules,
    "INSERT INTO video_tort_rule (id, name, owner_id, action, priority, min_matched_ms, min_ratio_bp, min_score, state, valid_from, valid_to, is_deleted) VALUES ?",
    (r) => [r.id, r.name, r.owner_id, r.action, r.priority, r.min_matched_ms, r.min_ratio_bp, r.min_score, r.state, toDatetime(r.valid_from), toDatetime(r.valid_to), r.is_deleted],
    onRows,
  );
  const propertyCount = await insertBatches(
    database,
    properties,
    "INSERT INTO video_tort_rule_property (id, rule_id, kind, value, state, is_deleted) VALUES ?",
    (p) => [p.id, p.rule_id, p.kind, p.value, p.state, p.is_deleted],
    onRows,
  );
  return { rules: ruleCount, properties: propertyCount };
}
