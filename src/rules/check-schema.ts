/**
 * `tortmatch db check`: the rule tables as they exist, against the contract (spec section 2, the
 * drizzle schema in schema.ts), without writing anything: every column the contract names, its
 * type and nullability, and the indexes the loader's reads rely on (mtime on both tables, rule_id on
 * the properties). Where another team owns the tables, this is what tortmatch needs of them: it
 * only reads them and never needs to create them.
 */
import { getTableColumns } from "drizzle-orm";
import { describeDatabaseFailure, RuleStoreError, type RuleDatabase } from "./database.js";
import { videoTortRule, videoTortRuleProperty } from "./schema.js";

/** The tables and the columns whose first place in an index the loader's keyset reads need. */
const TABLES = [
  { table: videoTortRule, name: "video_tort_rule", indexed: ["mtime"] },
  { table: videoTortRuleProperty, name: "video_tort_rule_property", indexed: ["mtime", "rule_id"] },
] as const;

/** `bigint(20) unsigned` (MariaDB, MySQL 5) and `bigint unsigned` (MySQL 8) alike. */
const normalType = (t: string) => t.toLowerCase().replace(/^((?:tiny|small|medium|big)?int)\(\d+\)/, "$1").trim();
const varcharLength = (t: string) => Number(/^varchar\((\d+)\)$/.exec(t)?.[1] ?? Number.NaN);

/** Each way the tables differ from the contract, one line each; empty when they keep it. */
export async function checkRuleSchema(database: RuleDatabase): Promise<string[]> {
  const problems: string[] = [];
  try {
    for (const { table, name, indexed } of TABLES) {
      const [columns] = (await database.pool.query(
        "SELECT COLUMN_NAME AS name, COLUMN_TYPE AS type, IS_NULLABLE AS nullable FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?",
        [name],
      )) as unknown as [{ name: string; type: string; nullable: string }[]];
      if (columns.length === 0) {
        problems.push(`${name}: the table does not exist (tortmatch db migrate creates it, where tortmatch owns the tables)`);
        continue;
      }
      const found = new Map(columns.map((c) => [c.name.toLowerCase(), c]));
      for (const column of Object.values(getTableColumns(table))) {
        const has = found.get(column.name);
        if (has === undefined) {
          problems.push(`${name}.${column.name}: missing`);
          continue;
        }
        const want = normalType(column.getSQLType());
        const got = normalType(has.type);
        // A wider text column reads the same rows: only a narrower one, or another type, breaks the contract.
        const wider = varcharLength(got) >= varcharLength(want);
        if (got !== want && !wider) problems.push(`${name}.${column.name}: is ${has.type}, the contract says ${column.getSQLType()}`);
        if (column.notNull && has.nullable === "YES") problems.push(`${name}.${column.name}: allows NULL, the contract says NOT NULL`);
      }
      const [firsts] = (await database.pool.query(
        "SELECT DISTINCT COLUMN_NAME AS name FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND SEQ_IN_INDEX = 1",
        [name],
      )) as unknown as [{ name: string }[]];
      const leading = new Set(firsts.map((f) => f.name.toLowerCase()));
      for (const column of indexed) {
        if (!leading.has(column)) problems.push(`${name}.${column}: no index starts with it (the loader's reads would scan the table)`);
      }
    }
  } catch (err) {
    throw new RuleStoreError(`checking the rule tables of ${database.describe} failed: ${describeDatabaseFailure(err)}`, { cause: err });
  }
  return problems;
}
