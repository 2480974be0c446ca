/** `tortmatch db migrate` and `tortmatch db check`. */
import type { Config } from "../config.js";
import { createLogger } from "../ops/logger.js";
import { checkRuleSchema } from "../rules/check-schema.js";
import { createDatabaseIfMissing, migrateRuleTables, openRuleDatabase } from "../rules/database.js";

export async function migrateCommand(config: Config, opts: { createDatabase?: boolean } = {}): Promise<void> {
  const log = createLogger(config.LOG_LEVEL);
  if (opts.createDatabase) await createDatabaseIfMissing(config.DATABASE_URL);
  const database = openRuleDatabase({ url: config.DATABASE_URL });
  try {
    await database.ping().catch((err: Error) => {
      throw /ER_BAD_DB_ERROR/.test(err.message) ? new Error(`${err.message}: add --create-database to create it first`, { cause: err }) : err;
    });
    await migrateRuleTables(database);
    log.info({ database: database.describe }, "migrations applied");
  } finally {
    await database.close();
  }
}

/** `tortmatch db check`: the tables against the contract, read only; fails (exit 1) listing every difference. */
export async function checkCommand(config: Config): Promise<void> {
  const database = openRuleDatabase({ url: config.DATABASE_URL });
  try {
    await database.ping();
    const problems = await checkRuleSchema(database);
    if (problems.length > 0) throw new Error(`the rule tables of ${database.describe} do not keep the contract:\n  ${problems.join("\n  ")}`);
    process.stdout.write(`the rule tables of ${database.describe} keep the contract (columns, types, indexes); nothing was written\n`);
  } finally {
    await database.close();
  }
}
