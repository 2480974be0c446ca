/**
 * Offline matching (spec section 6, "Replay"): the same decoder and matcher as
 * the service, over NDJSON lines, against one snapshot. Verdicts carry
 * `source: null`.
 */
import { once } from "node:events";
import type { Writable } from "node:stream";
import { decodeResultText } from "../ingest/decode-result.js";
import { buildVerdict, matchResult } from "../match/match-result.js";
import type { RuleSnapshot } from "../match/snapshot.js";
import { VERDICT_ACTIONS, type VerdictAction } from "../match/types.js";

export interface ReplaySummary {
  readonly lines: number;
  readonly verdicts: Readonly<Record<VerdictAction, number>>;
  readonly invalid: number;
  readonly rulesVersion: string;
  readonly skippedRuleRows: number;
  readonly skippedPropertyRows: number;
}

export interface ReplayOptions {
  readonly snapshot: RuleSnapshot;
  readonly lines: AsyncIterable<string>;
  readonly out: Writable;
  /** Called for each invalid line with its 1-based number and reason. */
  readonly onInvalid: (lineNumber: number, reason: string) => void;
  readonly now?: () => Date;
}

/** Match every line, write one verdict per valid line, and count what happened. */
export async function replayResults(options: ReplayOptions): Promise<ReplaySummary> {
  const { snapshot, out } = options;
  const now = options.now ?? (() => new Date());
  const verdicts = Object.fromEntries(VERDICT_ACTIONS.map((a) => [a, 0])) as Record<VerdictAction, number>;
  let lines = 0;
  let invalid = 0;
  for await (const line of options.lines) {
    lines++;
    if (line.trim() === "") continue;
    const checked = decodeResultText(line);
    if (!checked.ok) {
      invalid++;
      options.onInvalid(lines, checked.reason);
      continue;
    }
    const decision = matchResult(snapshot, checked.value);
    verdicts[decision.action]++;
    const verdict = buildVerdict(checked.value, decision, snapshot.version, null, now().toISOString());
    if (!out.write(`${JSON.stringify(verdict)}\n`)) await once(out, "drain");
  }
  return {
    lines,
    verdicts,
    invalid,
    rulesVersion: snapshot.version,
    skippedRuleRows: snapshot.counts.skippedRules,
    skippedPropertyRows: snapshot.counts.skippedProperties,
  };
}

/** The summary as a few human lines. */
export function formatReplaySummary(s: ReplaySummary, seconds: number): string {
  const valid = Object.values(s.verdicts).reduce((a, b) => a + b, 0);
  return [
    `replay: ${s.lines} lines, ${valid} verdicts, ${s.invalid} invalid lines in ${seconds.toFixed(2)} s`,
    `verdicts: ${VERDICT_ACTIONS.map((a) => `${a} ${s.verdicts[a]}`).join(", ")}`,
    `rules: version ${s.rulesVersion}; rows skipped: ${s.skippedRuleRows} rule, ${s.skippedPropertyRows} property`,
  ].join("\n");
}
