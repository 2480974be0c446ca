/**
 * A fresh MariaDB/MySQL database per test file, migrated with the committed
 * migrations, dropped afterwards. Real server, never a mock.
 */
import { randomBytes } from "node:crypto";
import mysql from "mysql2/promise";
import { migrateRuleTables, openRuleDatabase, type RuleDatabase } from "../../src/rules/database.js";

/** The server the tests use; the database name in it is replaced. */
export const TEST_SERVER_URL = process.env.TEST_DATABASE_URL ?? process.env.DATABASE_URL ?? "mysql://root@127.0.0.1:3306/test";

export interface TestDatabase {
  readonly url: string;
  readonly name: string;
  readonly database: RuleDatabase;
  drop(): Promise<void>;
}

export async function createTestDatabase(prefix = "tortmatch_test"): Promise<TestDatabase> {
  const name = `${prefix}_${randomBytes(4).toString("hex")}`;
  const admin = await mysql.createConnection({ uri: TEST_SERVER_URL });
  await admin.query(`CREATE DATABASE \`${name}\``);
  await admin.end();
  const url = new URL(TEST_SERVER_URL);
  url.pathname = `/${name}`;
  const database = openRuleDatabase({ url: url.toString() });
  await migrateRuleTables(database);
  return {
    url: url.toString(),
    name,
    database,
    async drop() {
      await database.close();
      const conn = await mysql.createConnection({ uri: TEST_SERVER_URL });
      await conn.query(`DROP DATABASE IF EXISTS \`${name}\``);
      await conn.end();
    },
  };
}
