/** warmUpStages: runs the pure stages on synthetic results, within its bounds, and leaves no trace in the matcher. */
import { describe, expect, it } from "vitest";
import { decodeResultText } from "../src/ingest/decode-result.js";
import { matchResult } from "../src/match/match-result.js";
import { generateResultLines } from "../src/seed/generate-dataset.js";
import { warmUpStages } from "../src/warm-up.js";
import { compile, generatedSnapshot } from "./support/rule-sets.js";

const dataset = { rules: 300, properties: 6_000, seed: 7 };

describe("warmUpStages", () => {
  it("runs the asked number of results when the time budget allows, some of them hitting rules", () => {
    const warm = warmUpStages(generatedSnapshot(dataset), { iterations: 700, budgetMs: 60_000 });
    expect(warm.iterations).toBe(700);
    expect(warm.invalid).toBe(0);
    expect(warm.hits).toBeGreaterThan(0);
    expect(warm.hits).toBeLessThan(700);
  });

  it("stops at its time budget", () => {
    expect(warmUpStages(generatedSnapshot(dataset), { iterations: 1_000_000, budgetMs: 0 }).iterations).toBeLessThan(1_000_000);
  });

  it("works on a snapshot without rules", () => {
    const empty = compile({ rules: [], properties: [] });
    expect(warmUpStages(empty, { iterations: 300, budgetMs: 60_000 })).toMatchObject({ iterations: 300, hits: 0, invalid: 0 });
  });

  it("makes only valid results when the rules name asset 0 (a valid property value, not a valid assetId)", () => {
    const snapshot = compile({
      rules: [{ id: 1, ownerId: 1, action: "claim", priority: 0, minMatchedMs: 0, minRatioBp: 0, minScore: "0.000", state: 1, validFromMs: null, validToMs: null, isDeleted: 0, mtimeMs: 1 }],
      properties: [
        { id: 1, ruleId: 1, kind: "asset", value: "0", state: 1, isDeleted: 0, mtimeMs: 1 },
        { id: 2, ruleId: 1, kind: "asset", value: "7", state: 1, isDeleted: 0, mtimeMs: 1 },
      ],
    });
    const warm = warmUpStages(snapshot, { iterations: 300, budgetMs: 60_000 });
    expect(warm).toMatchObject({ iterations: 300, invalid: 0 });
    expect(warm.hits).toBeGreaterThan(0);
  });

  it("leaves the matcher's decisions as they were", () => {
    const snapshot = generatedSnapshot(dataset);
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
