/**
 * `tortmatch db check` and `db migrate` where another team owns the rule tables: check verifies them
 * against the contract without writing; migrate on tables without its bookkeeping says MySQL's
 * reason and what to do; on a missing database it suggests --create-database.
 */
import mysql from "mysql2/promise";
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../support/cli.js";
import { TEST_SERVER_URL } from "../support/database.js";

const name = `tortmatch_owned_${randomBytes(4).toString("hex")}`;
const url = (() => {
  const u = new URL(TEST_SERVER_URL);
  u.pathname = `/${name}`;
  return u.toString();
})();
let admin: mysql.Connection;

beforeAll(async () => {
  admin = await mysql.createConnection({ uri: TEST_SERVER_URL });
  await admin.query(`CREATE DATABASE \`${name}\``);
});
afterAll(async () => {
  await admin?.query(`DROP DATABASE IF EXISTS \`${name}\``);
  await admin?.end();
});

describe("db check and db migrate on tables another team owns", () => {
  it("check lists every difference from the contract and writes nothing; migrate says MySQL's reason", async () => {
    // Made by someone else: a wider name (fine), min_score a float (not fine), no index on mtime, no property table.
    await admin.query(`CREATE TABLE \`${name}\`.video_tort_rule (id BIGINT UNSIGNED PRIMARY KEY, name VARCHAR(255) NOT NULL, owner_id BIGINT UNSIGNED NOT NULL,
      action VARCHAR(16) NOT NULL, priority INT NOT NULL, min_matched_ms INT UNSIGNED NOT NULL, min_ratio_bp INT UNSIGNED NOT NULL, min_score FLOAT NOT NULL,
      state TINYINT NOT NULL, valid_from DATETIME(3), valid_to DATETIME(3), is_deleted TINYINT NOT NULL, ctime DATETIME(3) NOT NULL, mtime DATETIME(3) NOT NULL)`);
    const check = await runCli(["db", "check"], { DATABASE_URL: url });
    expect(check.code).toBe(1);
    expect(check.stderr).toContain("video_tort_rule.min_score: is float, the contract says decimal(4,3)");
    expect(check.stderr).toContain("video_tort_rule.mtime: no index starts with it");
    expect(check.stderr).toContain("video_tort_rule_property: the table does not exist");
    expect(check.stderr).not.toContain("video_tort_rule.name");
    const [tables] = (await admin.query(`SHOW TABLES FROM \`${name}\``)) as unknown as [unknown[]];
    expect(tables).toHaveLength(1); // nothing written

    const migrate = await runCli(["db", "migrate"], { DATABASE_URL: url });
    expect(migrate.code).toBe(1);
    expect(migrate.stderr).toContain("ER_TABLE_EXISTS_ERROR: Table 'video_tort_rule' already exists");
    expect(migrate.stderr).toContain("tortmatch db check");
    expect(migrate.stderr).not.toContain("Failed query");
  });

  it("check passes tables migrated by tortmatch; migrate on a missing database suggests --create-database", async () => {
    const missing = url.replace(name, `${name}_missing`);
    const refused = await runCli(["db", "migrate"], { DATABASE_URL: missing });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("--create-database");
    const created = await runCli(["db", "migrate", "--create-database"], { DATABASE_URL: missing });
    expect(created.code, created.stderr).toBe(0);
    const check = await runCli(["db", "check"], { DATABASE_URL: missing });
    expect(check.code, check.stderr).toBe(0);
    expect(check.stdout).toContain("keep the contract");
    await admin.query(`DROP DATABASE \`${name}_missing\``);
  });
});
