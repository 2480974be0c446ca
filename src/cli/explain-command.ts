/** `tortmatch explain [--in FILE] [--json]`: why one recognition result did or did not hit each rule naming its assets. */
import { readFile } from "node:fs/promises";
import type { Config } from "../config.js";
import { decodeResult } from "../ingest/decode-result.js";
import { explainResult, formatExplanation } from "../match/explain.js";
import { matchResult } from "../match/match-result.js";
import { openRuleDatabase } from "../rules/database.js";
import { createRuleLoader } from "../rules/load-rules.js";

/** Largest input read from stdin or --in: one result (1 MiB) and some slack for whitespace. */
const MAX_INPUT_BYTES = 2 * 1024 * 1024;

async function readInput(file: string | undefined): Promise<Uint8Array> {
  if (file !== undefined) return readFile(file);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_INPUT_BYTES) throw new Error(`the input is over ${MAX_INPUT_BYTES} bytes: one recognition result is at most 1 MiB`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

export async function explainCommand(config: Config, opts: { in?: string; json?: boolean }): Promise<void> {
  const bytes = await readInput(opts.in);
  // A result as it would arrive: trailing whitespace and newlines of a file are not part of it.
  const checked = decodeResult(new TextEncoder().encode(new TextDecoder().decode(bytes).trim()));
  if (!checked.ok) throw new Error(`not a valid recognition result: ${checked.reason}`);
  const database = openRuleDatabase({ url: config.DATABASE_URL });
  let snapshot;
  try {
    snapshot = await createRuleLoader(database, { pageSize: config.TORT_LOAD_PAGE_SIZE }).loadFull();
  } finally {
    await database.close();
  }
  const rules = explainResult(snapshot, checked.value);
  const decision = matchResult(snapshot, checked.value);
  if (opts.json) {
    process.stdout.write(`${JSON.stringify({ rulesVersion: snapshot.version, action: decision.action, ruleId: decision.ruleId, rules })}\n`);
    return;
  }
  for (const e of rules) process.stdout.write(`${formatExplanation(e)}\n`);
  if (rules.length === 0) process.stdout.write("no rule names any of its assets\n");
  process.stdout.write(`verdict: ${decision.action}${decision.ruleId === null ? "" : ` (rule ${decision.ruleId})`} with rules ${snapshot.version}\n`);
}
