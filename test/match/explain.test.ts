/** explainResult: a case for each condition of spec section 4, and agreement with matchResult on generated data. */
import { describe, expect, it } from "vitest";
import { decodeResultText } from "../../src/ingest/decode-result.js";
import { explainResult, formatExplanation } from "../../src/match/explain.js";
import { matchResult } from "../../src/match/match-result.js";
import { createRuleTableBuilder, type PropertyRow, type RuleRow } from "../../src/match/rule-table.js";
import { compileSnapshot } from "../../src/match/snapshot.js";
import type { RecognitionResult } from "../../src/match/types.js";
import { generateResultLines } from "../../src/seed/generate-dataset.js";
import { generatedSnapshot } from "../support/rule-sets.js";

const T = "2026-06-01T00:00:00.000Z";
const rule = (over: Partial<RuleRow> & { id: number }): RuleRow => ({
  ownerId: 1, action: "claim", priority: 0, minMatchedMs: 0, minRatioBp: 0, minScore: "0.000",
  state: 1, validFromMs: null, validToMs: null, isDeleted: 0, mtimeMs: 1, ...over,
});
let pid = 1;
const prop = (ruleId: number, kind: string, value: string, over: Partial<PropertyRow> = {}): PropertyRow => ({ id: pid++, ruleId, kind, value, state: 1, isDeleted: 0, mtimeMs: 1, ...over });
const snapshotOf = (rules: RuleRow[], properties: PropertyRow[]) => {
  const b = createRuleTableBuilder();
  rules.forEach((r) => b.applyRule(r));
  properties.forEach((p) => b.applyProperty(p));
  return compileSnapshot(b.freeze(), { loadKind: "full", loadedAt: T });
};
const result = (over: Record<string, unknown> = {}): RecognitionResult => {
  const checked = decodeResultText(JSON.stringify({ aid: 1, cid: 2, mid: 9, tid: 4, durationMs: 100_000, recognizedAt: T, matches: [{ assetId: 7, startMs: 0, endMs: 20_000, score: 0.9 }], ...over }));
  if (!checked.ok) throw new Error(checked.reason);
  return checked.value;
};
const explainOne = (r: RuleRow, extra: PropertyRow[] = [], input = result()) =>
  explainResult(snapshotOf([r], [prop(r.id, "asset", "7"), ...extra]), input).map(formatExplanation);

describe("explainResult", () => {
  it.each([
    ["a hit, with its matched time", rule({ id: 1 }), [], "rule 1 (claim, priority 0): hit, matched 20000 ms"],
    ["disabled", rule({ id: 2, state: 0 }), [], "rule 2 (claim, priority 0): state 0 != 1 (disabled)"],
    ["soft-deleted", rule({ id: 3, isDeleted: 1 }), [], "rule 3 (claim, priority 0): is_deleted 1 (deleted)"],
    ["not yet valid", rule({ id: 4, validFromMs: Date.parse(T) + 1 }), [], "rule 4 (claim, priority 0): recognizedAt 2026-06-01T00:00:00.000Z < valid_from 2026-06-01T00:00:00.001Z"],
    ["no longer valid (valid_to is exclusive)", rule({ id: 5, validToMs: Date.parse(T) }), [], "rule 5 (claim, priority 0): recognizedAt 2026-06-01T00:00:00.000Z >= valid_to 2026-06-01T00:00:00.000Z"],
    ["zone", rule({ id: 6 }), [prop(6, "zone", "1"), prop(6, "zone", "2")], "rule 6 (claim, priority 0): tid 4 not in zones 1, 2"],
    ["exempt uploader", rule({ id: 7 }), [prop(7, "exempt_mid", "9")], "rule 7 (claim, priority 0): mid 9 is an exempt uploader"],
    ["score below min_score", rule({ id: 8, minScore: "0.950" }), [], "rule 8 (claim, priority 0): matched 0 ms: best score 0.9 < min_score 0.95"],
    ["matched time below min_matched_ms", rule({ id: 9, minMatchedMs: 30_000 }), [], "rule 9 (claim, priority 0): matched 20000 ms < min_matched_ms 30000"],
    ["ratio below min_ratio_bp", rule({ id: 10, minRatioBp: 2_500 }), [], "rule 10 (claim, priority 0): matched 20000 ms of durationMs 100000 = 2000 bp < min_ratio_bp 2500"],
  ])("%s", (_name, r, extra, line) => {
    expect(explainOne(r, extra)).toEqual([line]);
  });

  it("an item wholly past durationMs matches nothing; zones and exemptions pass when they allow the result", () => {
    expect(explainOne(rule({ id: 11 }), [], result({ durationMs: 1_000, matches: [{ assetId: 7, startMs: 5_000, endMs: 6_000, score: 1 }] }))).toEqual([
      "rule 11 (claim, priority 0): matched 0 ms: every item on its assets starts at or after durationMs 1000",
    ]);
    expect(explainOne(rule({ id: 12 }), [prop(12, "zone", "4"), prop(12, "exempt_mid", "10")])).toEqual(["rule 12 (claim, priority 0): hit, matched 20000 ms"]);
  });

  it("explains only rules that name one of the result's assets, in verdict order", () => {
    const snap = snapshotOf(
      [rule({ id: 1, priority: 1 }), rule({ id: 2, priority: 5, action: "review" }), rule({ id: 3 })],
      [prop(1, "asset", "7"), prop(2, "asset", "007"), prop(3, "asset", "8"), prop(3, "asset", "7", { state: 0 })],
    );
    expect(explainResult(snap, result()).map((e) => e.ruleId)).toEqual([2, 1]);
  });

  it("agrees with matchResult on every hit, over generated rules and results", () => {
    const dataset = { rules: 600, properties: 12_000, seed: 3 };
    const snap = generatedSnapshot(dataset);
    let compared = 0;
    for (const line of generateResultLines({ ...dataset, results: 2_000, invalidShare: 0 })) {
      const checked = decodeResultText(line);
      if (!checked.ok) continue;
      const hits = explainResult(snap, checked.value).filter((e) => e.hit).map((e) => [e.ruleId, e.matchedMs]);
      expect(hits).toEqual(matchResult(snap, checked.value).hits.map((h) => [h.ruleId, h.matchedMs]));
      compared++;
    }
    expect(compared).toBeGreaterThan(1_000);
  });
});
