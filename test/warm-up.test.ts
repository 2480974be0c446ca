/** warmUpStages: runs the pure stages on synthetic results, within its bounds, and leaves no trace in the matcher. */
import { describe, expect, it } from "vitest";
import { decodeResultText } from "../src/ingest/decode-result.js";
import { matchResult } from "../src/match/match-result.js";
import { createRuleTableBuilder } from "../src/match/rule-table.js";
import { compileSnapshot } from "../src/match/snapshot.js";
import { generateProperties, generateResultLines, generateRules } from "../src/seed/generate-dataset.js";
import { warmUpStages } from "../src/warm-up.js";

const dataset = { rules: 300, properties: 6_000, seed: 7 };
const loadedAt = "2026-06-01T00:00:00.000Z";

function generatedSnapshot() {
  const b = createRuleTableBuilder();
  for (const r of generateRules(dataset)) {
    b.applyRule({
      id: r.id, ownerId: r.owner_id, action: r.action, priority: r.priority, minMatchedMs: r.min_matched_ms, minRatioBp: r.min_ratio_bp,
      minScore: r.min_score, state: r.state, validFromMs: r.valid_from === null ? null : Date.parse(r.valid_from),
      validToMs: r.valid_to === null ? null : Date.parse(r.valid_to), isDeleted: r.is_deleted, mtimeMs: 1,
    });
  }
  for (const p of generateProperties(dataset)) b.applyProperty({ id: p.id, ruleId: p.rule_id, kind: p.kind, value: p.value, state: p.state, isDeleted: p.is_deleted, mtimeMs: 1 });
  return compileSnapshot(b.freeze(), { loadKind: "full", loadedAt });
}

describe("warmUpStages", () => {
  it("runs the asked number of results when the time budget allows, some of them hitting rules", () => {
    const warm = warmUpStages(generatedSnapshot(), { iterations: 700, budgetMs: 60_000 });
    expect(warm.iterations).toBe(700);
    expect(warm.invalid).toBe(0);
    expect(warm.hits).toBeGreaterThan(0);
    expect(warm.hits).toBeLessThan(700);
  });

  it("stops at its time budget", () => {
    expect(warmUpStages(generatedSnapshot(), { iterations: 1_000_000, budgetMs: 0 }).iterations).toBeLessThan(1_000_000);
  });

  it("works on a snapshot without rules", () => {
    const empty = compileSnapshot(createRuleTableBuilder().freeze(), { loadKind: "full", loadedAt });
    expect(warmUpStages(empty, { iterations: 300, budgetMs: 60_000 })).toMatchObject({ iterations: 300, hits: 0, invalid: 0 });
  });

  it("makes only valid results when the rules name asset 0 (a valid property value, not a valid assetId)", () => {
    const b = createRuleTableBuilder();
    b.applyRule({ id: 1, ownerId: 1, action: "claim", priority: 0, minMatchedMs: 0, minRatioBp: 0, minScore: "0.000", state: 1, validFromMs: null, validToMs: null, isDeleted: 0, mtimeMs: 1 });
    b.applyProperty({ id: 1, ruleId: 1, kind: "asset", value: "0", state: 1, isDeleted: 0, mtimeMs: 1 });
    b.applyProperty({ id: 2, ruleId: 1, kind: "asset", value: "7", state: 1, isDeleted: 0, mtimeMs: 1 });
    const snapshot = compileSnapshot(b.freeze(), { loadKind: "full", loadedAt });
    const warm = warmUpStages(snapshot, { iterations: 300, budgetMs: 60_000 });
    expect(warm).toMatchObject({ iterations: 300, invalid: 0 });
    expect(warm.hits).toBeGreaterThan(0);
  });

  it("leaves the matcher's decisions as they were", () => {
    const snapshot = generatedSnapshot();
    const results = [...generateResultLines({ ...dataset, results: 500, invalidShare: 0 })].map((line) => {
      const checked = decodeResultText(line);
      if (!checked.ok) throw new Error(checked.reason);
      return checked.value;
    });
    const before = results.map((r) => matchResult(snapshot, r));
    expect(before.some((d) => d.action !== "pass")).toBe(true); // the comparison covers hits
    warmUpStages(snapshot, { iterations: 2_000, budgetMs: 60_000 });
    expect(results.map((r) => matchResult(snapshot, r))).toEqual(before);
  });
});
