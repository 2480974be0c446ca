/** `tortmatch replay --in FILE [--out FILE]` */
import { createReadStream, createWriteStream } from "node:fs";
import { finished } from "node:stream/promises";
import { createInterface } from "node:readline";
import type { Config } from "../config.js";
import { createLogger } from "../ops/logger.js";
import { formatReplaySummary, replayResults } from "../replay/replay-results.js";
import { openRuleDatabase } from "../rules/database.js";
import { createRuleLoader } from "../rules/load-rules.js";
import { createSkippedRowsReporter } from "../rules/report-skipped.js";

export async function replayCommand(config: Config, opts: { in: string; out?: string }): Promise<void> {
  const log = createLogger(config.LOG_LEVEL);
  const database = openRuleDatabase({ url: config.DATABASE_URL });
  const started = performance.now();
  let snapshot;
  try {
    snapshot = await createRuleLoader(database, { pageSize: config.TORT_LOAD_PAGE_SIZE }).loadFull();
  } finally {
    await database.close();
  }
  createSkippedRowsReporter(log).report(snapshot);

  const input = createReadStream(opts.in, { encoding: "utf8" });
  const out = opts.out === undefined ? process.stdout : createWriteStream(opts.out);
  const summary = await replayResults({
    snapshot,
    lines: createInterface({ input, crlfDelay: Infinity }),
    out,
    onInvalid: (line, reason) => process.stderr.write(`${opts.in}:${line}: invalid: ${reason}\n`),
  });
  if (out !== process.stdout) {
    out.end();
    await finished(out);
  }
  process.stderr.write(`${formatReplaySummary(summary, (performance.now() - started) / 1000)}\n`);
}
