/** `tortmatch db migrate` */
import type { Config } from "../config.js";
import { createLogger } from "../ops/logger.js";
import { createDatabaseIfMissing, migrateRuleTables, openRuleDatabase } from "../rules/database.js";

export async function migrateCommand(config: Config, opts: { createDatabase?: boolean } = {}): Promise<void> {
  const log = createLogger(config.LOG_LEVEL);
  if (opts.createDatabase) await createDatabaseIfMissing(config.DATABASE_URL);
  const database = openRuleDatabase({ url: config.DATABASE_URL });
  try {
    await database.ping();
    await migrateRuleTables(database);
    log.info({ database: database.describe }, "migrations applied");
  } finally {
    await database.close();
  }
}
