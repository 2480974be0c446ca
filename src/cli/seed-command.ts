/** `tortmatch seed`: rules into MySQL, and optionally recognition results into an NDJSON file. */
import { SingleBar, Presets } from "cli-progress";
import { createWriteStream } from "node:fs";
import { once } from "node:events";
import { finished } from "node:stream/promises";
import type { Config } from "../config.js";
import { createLogger } from "../ops/logger.js";
import { migrateRuleTables, openRuleDatabase } from "../rules/database.js";
import { generateProperties, generateResultLines, generateRules } from "../seed/generate-dataset.js";
import { ruleTableRows, writeRules } from "../seed/write-rules.js";

interface SeedOptions {
  rules: number;
  properties: number;
  seed: number;
  results: number;
  resultsOut?: string;
  rulesWrite: boolean;
  /** Replace rule tables that already hold rows (without it, seed refuses them). */
  replace?: boolean;
}

function progressBar(label: string, total: number): SingleBar {
  const bar = new SingleBar(
    { format: `${label} [{bar}] {percentage}% | {value}/{total} | {eta_formatted} left`, stream: process.stderr, noTTYOutput: false, etaBuffer: 50 },
    Presets.shades_classic,
  );
  bar.start(total, 0);
  return bar;
}

export async function seedCommand(config: Config, opts: SeedOptions): Promise<void> {
  const log = createLogger(config.LOG_LEVEL);
  const dataset = { rules: opts.rules, properties: opts.properties, seed: opts.seed };

  if (opts.rulesWrite) {
    const database = openRuleDatabase({ url: config.DATABASE_URL });
    try {
      await database.ping();
      await migrateRuleTables(database);
      const held = await ruleTableRows(database);
      if ((held.rules > 0 || held.properties > 0) && !opts.replace) {
        throw new Error(
          `the rule tables of ${database.describe} hold ${held.rules} rules and ${held.properties} properties: seed replaces them, so it asks for --replace (or --no-rules-write to write only results)`,
        );
      }
      const bar = progressBar("rule rows", opts.rules + opts.properties);
      const written = await writeRules(database, generateRules(dataset), generateProperties(dataset), (n) => bar.increment(n));
      bar.stop();
      log.info({ database: database.describe, ...written, seed: opts.seed }, "rule tables seeded");
    } finally {
      await database.close();
    }
  }

  if (opts.resultsOut !== undefined) {
    const out = createWriteStream(opts.resultsOut);
    const bar = progressBar("results  ", opts.results);
    let n = 0;
    for (const line of generateResultLines({ ...dataset, results: opts.results })) {
      if (!out.write(`${line}\n`)) await once(out, "drain");
      if (++n % 1000 === 0) bar.update(n);
    }
    bar.update(n);
    bar.stop();
    out.end();
    await finished(out);
    log.info({ file: opts.resultsOut, results: n }, "recognition results written");
  }
}
