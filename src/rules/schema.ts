/**
 * The two rule tables of spec section 2, exactly as the contract gives them.
 * tortmatch only reads them; `seed` and the tests write them.
 */
import { sql } from "drizzle-orm";
import {
  bigint,
  datetime,
  decimal,
  index,
  int,
  mysqlTable,
  tinyint,
  varchar,
} from "drizzle-orm/mysql-core";

/** DATETIME(3) columns are read as text and parsed as UTC (see rule-rows.ts). */
const ctime = () =>
  datetime("ctime", { fsp: 3, mode: "string" })
    .notNull()
    .default(sql`CURRENT_TIMESTAMP(3)`);
/**
 * drizzle cannot say ON UPDATE on a DATETIME column; the clause is added by the
 * custom migration `0001_mtime_on_update.sql`.
 */
const mtime = () =>
  datetime("mtime", { fsp: 3, mode: "string" })
    .notNull()
    .default(sql`CURRENT_TIMESTAMP(3)`);

export const videoTortRule = mysqlTable(
  "video_tort_rule",
  {
    id: bigint("id", { mode: "number", unsigned: true }).primaryKey().autoincrement(),
    name: varchar("name", { length: 128 }).notNull(),
    ownerId: bigint("owner_id", { mode: "number", unsigned: true }).notNull(),
    action: varchar("action", { length: 16 }).notNull(),
    priority: int("priority").notNull().default(0),
    minMatchedMs: int("min_matched_ms", { unsigned: true }).notNull().default(0),
    minRatioBp: int("min_ratio_bp", { unsigned: true }).notNull().default(0),
    minScore: decimal("min_score", { precision: 4, scale: 3 }).notNull().default("0.000"),
    state: tinyint("state").notNull().default(1),
    validFrom: datetime("valid_from", { fsp: 3, mode: "string" }),
    validTo: datetime("valid_to", { fsp: 3, mode: "string" }),
    isDeleted: tinyint("is_deleted").notNull().default(0),
    ctime: ctime(),
    mtime: mtime(),
  },
  (t) => [index("idx_video_tort_rule_mtime").on(t.mtime)],
);

export const videoTortRuleProperty = mysqlTable(
  "video_tort_rule_property",
  {
    id: bigint("id", { mode: "number", unsigned: true }).primaryKey().autoincrement(),
    ruleId: bigint("rule_id", { mode: "number", unsigned: true }).notNull(),
    kind: varchar("kind", { length: 16 }).notNull(),
    value: varchar("value", { length: 64 }).notNull(),
    state: tinyint("state").notNull().default(1),
    isDeleted: tinyint("is_deleted").notNull().default(0),
    ctime: ctime(),
    mtime: mtime(),
  },
  (t) => [
    index("idx_video_tort_rule_property_rule_id").on(t.ruleId),
    index("idx_video_tort_rule_property_mtime").on(t.mtime),
  ],
);
