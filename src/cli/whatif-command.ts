/**
 * `tortmatch whatif [--since DURATION | --from-seq N] [--rules-database URL] [--out FILE] [--json]`:
 * the retained inputs against candidate rules, compared with the recorded verdicts (spec section 10).
 */
import { jetstreamManager } from "@nats-io/jetstream";
import { Presets, SingleBar } from "cli-progress";
import { createWriteStream } from "node:fs";
import { once } from "node:events";
import { finished } from "node:stream/promises";
import type { Config } from "../config.js";
import { connectNats } from "../nats/connection.js";
import { openRuleDatabase } from "../rules/database.js";
import { createRuleLoader } from "../rules/load-rules.js";
import { runWhatIf } from "../whatif/whatif.js";

/** `90s`, `15m`, `2h`, `7d` or plain milliseconds → ms. */
export function parseDuration(text: string): number {
  const m = /^(\d+)(ms|s|m|h|d)?$/.exec(text.trim());
  if (m === null) throw new Error(`--since takes a duration such as 90s, 15m, 2h or 7d, got ${JSON.stringify(text)}`);
  const unit = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(m[2] ?? "ms") as "ms"];
  return Number(m[1]) * unit;
}

export interface WhatIfCommandOptions {
  since?: string;
  fromSeq?: string;
  rulesDatabase?: string;
  out?: string;
  json?: boolean;
  /** `recorded` (default): the verdicts recorded for the inputs; `live`: the rules in DATABASE_URL now, computed over the same inputs. */
  baseline?: string;
}

export async function whatifCommand(config: Config, opts: WhatIfCommandOptions): Promise<void> {
  if (opts.since !== undefined && opts.fromSeq !== undefined) throw new Error("give --since or --from-seq, not both");
  const sinceMs = opts.since === undefined ? undefined : Date.now() - parseDuration(opts.since);
  const fromSeq = opts.fromSeq === undefined ? undefined : Number(opts.fromSeq);
  if (fromSeq !== undefined && !(Number.isSafeInteger(fromSeq) && fromSeq >= 1)) throw new Error("--from-seq takes a stream sequence (1 or more)");

  const baselineKind = opts.baseline ?? "recorded";
  if (baselineKind !== "recorded" && baselineKind !== "live") throw new Error(`--baseline takes recorded or live, got ${JSON.stringify(opts.baseline)}`);
  const load = async (url: string) => {
    const database = openRuleDatabase({ url });
    try {
      return await createRuleLoader(database, { pageSize: config.TORT_LOAD_PAGE_SIZE }).loadFull();
    } finally {
      await database.close();
    }
  };
  const candidate = await load(opts.rulesDatabase ?? config.DATABASE_URL);
  const baseline = baselineKind === "live" ? await load(config.DATABASE_URL) : null;
  const nc = await connectNats(config, "tortmatch-whatif");
  const out = opts.out === undefined ? null : createWriteStream(opts.out);
  const bar = process.stderr.isTTY ? new SingleBar({ format: "whatif [{bar}] {percentage}% | {value}/{total} inputs", stream: process.stderr }, Presets.shades_classic) : null;
  let started = false;
  try {
    const jsm = await jetstreamManager(nc);
    const report = await runWhatIf({
      jsm,
      js: jsm.jetstream(),
      inputStream: config.TORT_INPUT_STREAM,
      verdictStream: config.TORT_VERDICT_STREAM,
      candidate,
      ...(baseline !== null ? { baseline } : {}),
      ...(fromSeq !== undefined ? { fromSeq } : {}),
      ...(sinceMs !== undefined ? { sinceMs } : {}),
      ...(out !== null
        ? { out: async (line: string) => void (out.write(line) || (await once(out, "drain"))) }
        : {}),
      onProgress: (read, total) => {
        if (bar === null) return;
        if (!started) (bar.start(total, read), (started = true));
        else bar.update(read);
      },
    });
    bar?.stop();
    const s = report.summary;
    const say = (line: string) => process.stdout.write(`${line}\n`);
    const against = report.baseline.kind === "live" ? `the live rules ${report.baseline.version} (DATABASE_URL), both computed over the same inputs` : "the verdicts recorded for them (edits already live count as the candidate's: --baseline live compares with the live rules)";
    say(`candidate rules ${report.candidateVersion} against ${s.inputs} inputs of ${config.TORT_INPUT_STREAM}, compared with ${against}: ${s.compared} compared, ${s.changed} changed, ${s.unchanged} unchanged, ${s.invalid} invalid, ${s.noVerdict} without a recorded verdict`);
    say("transitions (changed inputs):");
    for (const [key, n] of Object.entries(s.transitions).sort((a, b) => b[1] - a[1])) say(`  ${key.replace("->", " -> ")}: ${n}`);
    say("rules that gained or lost the most hits:");
    for (const r of report.ruleChanges.slice(0, 10)) say(`  rule ${r.ruleId}: ${r.before} -> ${r.after} (${r.after > r.before ? "+" : ""}${r.after - r.before})`);
    say("samples:");
    for (const x of report.samples.slice(0, 10)) say(`  seq ${x.seq}: ${x.before.action} (rule ${x.before.ruleId ?? "-"}) -> ${x.after.action} (rule ${x.after.ruleId ?? "-"})`);
    // The spec's summary as it is; "baseline" is added only when it is not the recorded verdicts.
    if (opts.json) say(JSON.stringify(report.baseline.kind === "live" ? { ...s, baseline: "live" } : s));
  } finally {
    bar?.stop();
    if (out !== null) {
      out.end();
      await finished(out);
    }
    await nc.drain();
  }
}
