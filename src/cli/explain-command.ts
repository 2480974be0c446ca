/**
 * `tortmatch explain [--in FILE] [--json] [--from-fleet]`: why one recognition result did or did not hit
 * each rule naming its assets — with the rules read from the tables, or (`--from-fleet`) as a running
 * instance answers on its explain endpoint, with the snapshot it serves.
 */
import { readFile } from "node:fs/promises";
import type { Config } from "../config.js";
import { decodeResult } from "../ingest/decode-result.js";
import { explainResult, formatExplanation } from "../match/explain.js";
import { matchResult } from "../match/match-result.js";
import { connectNats } from "../nats/connection.js";
import type { RuleExplanation } from "../match/explain.js";
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

/** The explanation of a running instance (the explain endpoint's queue group answers once). */
async function explainOnFleet(config: Config, body: Uint8Array): Promise<{ rulesVersion: string; action: string; ruleId: number | null; rules: RuleExplanation[] }> {
  const nc = await connectNats(config, "tortmatch-cli");
  try {
    const reply = await nc.request(config.TORT_EXPLAIN_SUBJECT, body, { timeout: 10_000 }).catch((err: Error) => {
      throw new Error(/no responders|503/i.test(err.message) ? `no instance answers ${config.TORT_EXPLAIN_SUBJECT}: is one running (tortmatch fleet)?` : `asking ${config.TORT_EXPLAIN_SUBJECT} failed: ${err.message}`);
    });
    const answer = reply.json<{ error?: string; rulesVersion: string; action: string; ruleId: number | null; rules: RuleExplanation[] }>();
    if (answer.error !== undefined) throw new Error(`the running instance answered: ${answer.error}`);
    return answer;
  } finally {
    await nc.drain();
  }
}

export async function explainCommand(config: Config, opts: { in?: string; json?: boolean; fromFleet?: boolean }): Promise<void> {
  const bytes = await readInput(opts.in);
  // A result as it would arrive: trailing whitespace and newlines of a file are not part of it.
  const body = new TextEncoder().encode(new TextDecoder().decode(bytes).trim());
  const checked = decodeResult(body);
  if (!checked.ok) throw new Error(`not a valid recognition result: ${checked.reason}`);
  if (opts.fromFleet) {
    const answer = await explainOnFleet(config, body);
    print(answer, opts.json === true);
    return;
  }
  const database = openRuleDatabase({ url: config.DATABASE_URL });
  let snapshot;
  try {
    snapshot = await createRuleLoader(database, { pageSize: config.TORT_LOAD_PAGE_SIZE }).loadFull();
  } finally {
    await database.close();
  }
  const decision = matchResult(snapshot, checked.value);
  print({ rulesVersion: snapshot.version, action: decision.action, ruleId: decision.ruleId, rules: explainResult(snapshot, checked.value) }, opts.json === true);
}

function print(e: { rulesVersion: string; action: string; ruleId: number | null; rules: readonly RuleExplanation[] }, json: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(e)}\n`);
    return;
  }
  for (const rule of e.rules) process.stdout.write(`${formatExplanation(rule)}\n`);
  if (e.rules.length === 0) process.stdout.write("no rule names any of its assets\n");
  process.stdout.write(`verdict: ${e.action}${e.ruleId === null ? "" : ` (rule ${e.ruleId})`} with rules ${e.rulesVersion}\n`);
}
