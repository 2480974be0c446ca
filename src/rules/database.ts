/**
 * The MySQL connection pool for the rule tables. Sessions run in UTC and
 * DATETIME values are read as text, so no process time zone can shift them.
 */
import { drizzle, type MySql2Database } from "drizzle-orm/mysql2";
import { migrate } from "drizzle-orm/mysql2/migrator";
import mysql from "mysql2/promise";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import * as schema from "./schema.js";

/** An infrastructure failure talking to MySQL; never carries the password. */
export class RuleStoreError extends Error {
  override name = "RuleStoreError";
}

/** `mysql://user@host:port/db`: the URL without its password, safe for logs and errors. */
export function describeDatabaseUrl(url: string): string {
  try {
    const u = new URL(url);
    u.password = "";
    return u.toString();
  } catch {
    return "(an unparseable DATABASE_URL)";
  }
}

/**
 * One line about what went wrong: the driver's code and message from the
 * deepest cause (drizzle wraps driver errors in a "Failed query" error that
 * names the SQL, not the failure).
 */
export function describeDatabaseFailure(err: unknown): string {
  let e = err as { cause?: unknown; code?: string; message?: string } | undefined;
  while (e?.cause !== undefined && e.cause !== e) e = e.cause as typeof e;
  const text = `${e?.code ? `${e.code}: ` : ""}${e?.message ?? String(err)}`;
  return text.replace(/\s+/g, " ").trim();
}

/** Driver error codes of a server that could not be reached (by code, never by message text). */
const UNREACHABLE = new Set(["ECONNREFUSED", "ETIMEDOUT", "ENOTFOUND", "EHOSTUNREACH", "PROTOCOL_CONNECTION_LOST"]);

/** The `code` of the deepest error in a cause chain that has one. */
function deepestCode(err: unknown): string | undefined {
  let code: string | undefined;
  for (let e = err as { cause?: unknown; code?: unknown } | undefined, depth = 0; e !== undefined && e !== null && depth < 10; e = e.cause as typeof e, depth++) {
    if (typeof e.code === "string") code = e.code;
  }
  return code;
}

export type RuleDb = MySql2Database<typeof schema>;

/** A pool and its drizzle handle; `close` ends the pool after running queries finish. */
export interface RuleDatabase {
  readonly db: RuleDb;
  readonly pool: mysql.Pool;
  /** Where it points, without the password. */
  readonly describe: string;
  /** Fail fast, with host and error, when the server cannot be reached. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface RuleDatabaseOptions {
  /** `mysql://user:password@host:port/database` */
  readonly url: string;
  /** Pool size; the loader needs one connection, migrations and seeding a few. */
  readonly connectionLimit?: number;
  readonly connectTimeoutMs?: number;
}

/** Open a pool (lazily: no connection is made before the first query). */
export function openRuleDatabase(options: RuleDatabaseOptions): RuleDatabase {
  const describe = describeDatabaseUrl(options.url);
  const pool = mysql.createPool({
    uri: options.url,
    connectionLimit: options.connectionLimit ?? 4,
    connectTimeout: options.connectTimeoutMs ?? 10_000,
    dateStrings: true,
    supportBigNumbers: true,
    bigNumberStrings: false,
    enableKeepAlive: true,
  });
  // CURRENT_TIMESTAMP(3) defaults and comparisons must be UTC (spec section 2).
  pool.pool.on("connection", (conn) => {
    conn.query("SET time_zone = '+00:00'");
  });
  const wrap = (what: string, err: unknown) =>
    new RuleStoreError(`${what} ${describe} failed: ${describeDatabaseFailure(err)}`, { cause: err });
  return {
    db: drizzle(pool, { schema, mode: "default" }),
    pool,
    describe,
    async ping() {
      try {
        await pool.query("SELECT 1");
      } catch (err) {
        throw wrap("connecting to", err);
      }
    },
    async close() {
      // A connection that never opened (server unreachable) makes end() reject
      // with that same connect error, already reported by the query that met it.
      await pool.end().catch((err: unknown) => {
        if (!UNREACHABLE.has(deepestCode(err) ?? "")) throw err;
      });
    },
  };
}

/** `CREATE DATABASE IF NOT EXISTS` for the database a URL names (connecting without it). */
export async function createDatabaseIfMissing(url: string): Promise<void> {
  const u = new URL(url);
  const name = decodeURIComponent(u.pathname.replace(/^\//, ""));
  if (!/^[A-Za-z0-9_$]+$/.test(name)) throw new RuleStoreError(`database name ${JSON.stringify(name)} is not a plain identifier`);
  u.pathname = "/";
  let conn: mysql.Connection | undefined;
  try {
    conn = await mysql.createConnection({ uri: u.toString() });
    await conn.query(`CREATE DATABASE IF NOT EXISTS \`${name}\``);
  } catch (err) {
    throw new RuleStoreError(`creating database on ${describeDatabaseUrl(url)} failed: ${describeDatabaseFailure(err)}`, { cause: err });
  } finally {
    await conn?.end().catch(() => {});
  }
}

/** The committed migrations: beside src/ when run from source, one level up from dist/src/. */
const MIGRATIONS = [new URL("../../drizzle/", import.meta.url), new URL("../../../drizzle/", import.meta.url)]
  .map((u) => fileURLToPath(u))
  .find((dir) => existsSync(`${dir}meta/_journal.json`))!;

/** Apply the committed drizzle migrations; running it twice changes nothing. A failure says MySQL's reason, not drizzle's SQL. */
export async function migrateRuleTables(database: RuleDatabase): Promise<void> {
  try {
    await migrate(database.db, { migrationsFolder: MIGRATIONS });
  } catch (err) {
    const code = deepestCode(err);
    const hint =
      code === "ER_TABLE_EXISTS_ERROR"
        ? ": the rule tables exist without tortmatch's migration bookkeeping (another team owns them?). tortmatch only reads them and never needs to create them: `tortmatch db check` verifies them against the contract"
        : code === "ER_BAD_DB_ERROR"
          ? ": add --create-database to create it first"
          : "";
    throw new RuleStoreError(`migrating ${database.describe} failed: ${describeDatabaseFailure(err)}${hint}`, { cause: err });
  }
}
