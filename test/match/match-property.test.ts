/**
 * The matcher against a deliberately naive reference written here from spec
 * sections 2 and 4 (no index, no scratch arrays, BigInt for property values),
 * over rule sets of at least 5,000 rules that share few assets, results that
 * repeat an asset, overlap and run past durationMs — including the first call
 * of a freshly imported matcher module (what a new process sees).
 */
import fc from "fast-check";
import { describe, expect, it, vi } from "vitest";
import { naiveMatch } from "../support/naive-match.js";
import { createRandom } from "../../src/seed/generate-dataset.js";
import { decodeResultText } from "../../src/ingest/decode-result.js";
import { compile, resultArb, ruleSet, T0, toResult } from "../support/rule-sets.js";

describe("matchResult against a naive reference", () => {
  it("agrees on every result, over rule sets of 5,000+ rules, from the first call of a fresh module on", async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 2 ** 31 - 1 }), fc.integer({ min: 5_000, max: 6_500 }), fc.array(resultArb, { minLength: 1, maxLength: 25 }), async (seed, ruleCount, results) => {
        const set = ruleSet(seed, ruleCount);
        const snapshot = compile(set);
        // A new module instance: no scratch state from earlier calls, as in a new process.
        vi.resetModules();
        const { matchResult } = await import("../../src/match/match-result.js");
        for (const r of results) {
          const result = toResult(r);
          expect(matchResult(snapshot, result)).toEqual(naiveMatch(set.rules, set.properties, result));
        }
      }),
      { numRuns: 40 },
    );
  });

  it("agrees across the scratch generation's wrap (about a billion calls in), where the per-rule marks are cleared", async () => {
    const { matchResult, nearGenerationLimit } = await import("../../src/match/match-result.js");
    await fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 31 - 1 }), fc.array(resultArb, { minLength: 8, maxLength: 20 }), fc.integer({ min: 0, max: 6 }), (seed, results, callsLeft) => {
        const set = ruleSet(seed, 5_000);
        const snapshot = compile(set);
        for (const r of results) matchResult(snapshot, toResult(r)); // marks from before the wrap
        nearGenerationLimit(snapshot, callsLeft);
        for (const r of [...results, ...results]) {
          const result = toResult(r);
          expect(matchResult(snapshot, result)).toEqual(naiveMatch(set.rules, set.properties, result));
        }
      }),
      { numRuns: 10 },
    );
  });

  it("agrees on a result of 10,000 items on one popular asset, ascending, descending and shuffled", async () => {
    const { matchResult } = await import("../../src/match/match-result.js");
    const set = ruleSet(7, 5_000);
    const snapshot = compile(set);
    const popular = Number(set.properties.find((p) => p.kind === "asset" && p.value === "1") ? 1 : set.properties[0]!.value);
    const ascending = Array.from({ length: 10_000 }, (_, k) => ({ assetId: popular, startMs: k * 7, endMs: k * 7 + 5, score: 1 }));
    const rnd = createRandom(3);
    const shuffled = [...ascending].sort(() => rnd() - 0.5);
    for (const matches of [ascending, [...ascending].reverse(), shuffled]) {
      const checked = decodeResultText(JSON.stringify({ aid: 1, cid: 1, mid: 9, tid: 1, durationMs: 70_000, recognizedAt: new Date(T0).toISOString(), matches }));
      if (!checked.ok) throw new Error(checked.reason);
      const decision = matchResult(snapshot, checked.value);
      expect(decision).toEqual(naiveMatch(set.rules, set.properties, checked.value));
      expect(decision.hits.length).toBeGreaterThan(0);
    }
  });
});
