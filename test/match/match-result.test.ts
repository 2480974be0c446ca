import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { decodeResultText } from "../../src/ingest/decode-result.js";
import { buildVerdict, matchResult } from "../../src/match/match-result.js";
import { createRuleTableBuilder, type PropertyRow, type RuleRow } from "../../src/match/rule-table.js";
import { compileSnapshot, findAssetSlot, slotAssetId, slotCount, slotFirst, type RuleSnapshot } from "../../src/match/snapshot.js";
import type { RecognitionResult } from "../../src/match/types.js";
import { toPropertyRow, toRuleRow } from "../fixtures/rows.js";
import { exampleCases, exampleProperties, exampleRules } from "../fixtures/spec-examples.js";

function snapshotOf(rules: RuleRow[], properties: PropertyRow[]): RuleSnapshot {
  const builder = createRuleTableBuilder();
  rules.forEach(builder.applyRule);
  properties.forEach(builder.applyProperty);
  return compileSnapshot(builder.freeze(), { loadKind: "full", loadedAt: "2026-11-28T00:00:00.000Z" });
}

function resultOf(input: unknown): RecognitionResult {
  const checked = decodeResultText(JSON.stringify(input));
  if (!checked.ok) throw new Error(`fixture input rejected: ${checked.reason}`);
  return checked.value;
}

const examples = snapshotOf(exampleRules.map((r) => toRuleRow(r)), exampleProperties.map((p) => toPropertyRow(p)));

describe("spec worked examples", () => {
  const matching = exampleCases.filter((c) => c.expect !== "dead-letter") as Extract<
    (typeof exampleCases)[number],
    { input: unknown }
  >[];
  const rejected = exampleCases.filter((c) => c.expect === "dead-letter") as Extract<
    (typeof exampleCases)[number],
    { raw: string }
  >[];

  it("covers both kinds of case", () => {
    expect(matching.length).toBeGreaterThan(15);
    expect(rejected.length).toBeGreaterThan(5);
  });

  it.each(matching.map((c) => [c.case, c] as const))("%s", (_name, c) => {
    expect(matchResult(examples, resultOf(c.input))).toEqual(c.expect);
  });

  it.each(rejected.map((c) => [c.case, c] as const))("%s", (_name, c) => {
    const checked = decodeResultText(c.raw);
    expect(checked.ok).toBe(false);
    if (!checked.ok) expect(checked.reason).toMatch(/^[^\n]+$/);
  });

  it("skips the contract-breaking rows and reports each with its id", () => {
    expect(examples.skipped.map((s) => `${s.table}:${s.id}`)).toEqual([
      "video_tort_rule:10",
      "video_tort_rule:11",
      "video_tort_rule_property:16", // its rule 10 was skipped
      "video_tort_rule_property:17", // its rule 11 was skipped
      "video_tort_rule_property:18",
      "video_tort_rule_property:19",
      "video_tort_rule_property:20",
    ]);
    expect(examples.counts).toMatchObject({ skippedRules: 2, skippedProperties: 5 });
  });
});

const rule = (over: Partial<RuleRow> & { id: number }): RuleRow => ({
  ownerId: 1, action: "claim", priority: 0, minMatchedMs: 0, minRatioBp: 0, minScore: "0.000",
  state: 1, validFromMs: null, validToMs: null, isDeleted: 0, mtimeMs: 1, ...over,
});
let nextPropertyId = 1;
const prop = (ruleId: number, kind: string, value: string, over: Partial<PropertyRow> = {}): PropertyRow => ({
  id: nextPropertyId++, ruleId, kind, value, state: 1, isDeleted: 0, mtimeMs: 1, ...over,
});
const input = (over: Partial<Record<string, unknown>> = {}) => resultOf({
  aid: 1, cid: 2, mid: 3, tid: 4, durationMs: 100_000, recognizedAt: "2026-01-01T00:00:00Z", matches: [], ...over,
});
const seg = (assetId: number, startMs: number, endMs: number, score = 1) => ({ assetId, startMs, endMs, score });

describe("matchResult", () => {
  it.each([
    ["disjoint segments add up", [seg(7, 0, 10), seg(7, 20, 30)], 20],
    ["nested segment counted once", [seg(7, 0, 50), seg(7, 10, 20)], 50],
    ["touching segments join", [seg(7, 0, 10), seg(7, 10, 20)], 20],
    ["unsorted input", [seg(7, 60, 70), seg(7, 0, 10), seg(7, 5, 15)], 25],
    ["segment wholly past the duration adds nothing", [seg(7, 100_000, 100_500), seg(7, 0, 1)], 1],
    ["assets of other rules are ignored", [seg(8, 0, 90_000), seg(7, 0, 1)], 1],
  ])("%s", (_name, matches, matchedMs) => {
    const snap = snapshotOf([rule({ id: 1 })], [prop(1, "asset", "7")]);
    expect(matchResult(snap, input({ matches })).hits[0]?.matchedMs).toBe(matchedMs);
  });

  it("merges many segments over many rules (the sorted path)", () => {
    const rules = [1, 2, 3].map((id) => rule({ id, priority: id }));
    const snap = snapshotOf(rules, [prop(1, "asset", "7"), prop(2, "asset", "7"), prop(3, "asset", "8")]);
    const matches = Array.from({ length: 40 }, (_, k) => seg(k % 2 === 0 ? 7 : 8, (39 - k) * 100, (39 - k) * 100 + 150));
    const d = matchResult(snap, input({ matches }));
    // asset 7 at k even: starts 3900,3700,...,100 each 150 long, gaps of 50 → 20 × 150
    expect(d.hits.map((h) => [h.ruleId, h.matchedMs])).toEqual([[3, 20 * 150], [2, 3000], [1, 3000]]);
  });

  it("ratio threshold uses exact integer arithmetic", () => {
    const snap = snapshotOf([rule({ id: 1, minRatioBp: 3333 })], [prop(1, "asset", "7")]);
    expect(matchResult(snap, input({ durationMs: 3, matches: [seg(7, 0, 1)] })).action).toBe("claim"); // 10000 >= 9999
    const strict = snapshotOf([rule({ id: 1, minRatioBp: 3334 })], [prop(1, "asset", "7")]);
    expect(matchResult(strict, input({ durationMs: 3, matches: [seg(7, 0, 1)] })).action).toBe("pass");
  });

  it("leading zeros in property values are the same number; huge ones match nothing", () => {
    const snap = snapshotOf(
      [rule({ id: 1 }), rule({ id: 2 })],
      [prop(1, "asset", "007"), prop(2, "asset", "7"), prop(2, "zone", "99999999999999999999")],
    );
    expect(matchResult(snap, input({ matches: [seg(7, 0, 1)] })).hits.map((h) => h.ruleId)).toEqual([1]);
  });

  it("rejects signs, spaces and upper-case words as contract breaks", () => {
    const snap = snapshotOf(
      [rule({ id: 1 }), rule({ id: 2, action: "BLOCK" })],
      [prop(1, "asset", "+7"), prop(1, "asset", " 7"), prop(1, "asset", ""), prop(1, "Asset", "7"), prop(1, "asset", "7")],
    );
    expect(snap.counts).toMatchObject({ skippedRules: 1, skippedProperties: 4, activeRules: 1 });
  });

  it("properties of an inactive rule are unused but not skipped", () => {
    const snap = snapshotOf([rule({ id: 1, state: 2 })], [prop(1, "asset", "7")]);
    expect(snap.counts).toMatchObject({ activeRules: 0, skippedProperties: 0 });
    expect(matchResult(snap, input({ matches: [seg(7, 0, 1)] })).action).toBe("pass");
  });

  it("builds the verdict of spec section 5", () => {
    const result = input({ matches: [seg(7, 0, 1)] });
    const snap = snapshotOf([rule({ id: 1, ownerId: 9, action: "review" })], [prop(1, "asset", "7")]);
    const verdict = buildVerdict(result, matchResult(snap, result), snap.version, { stream: "S", seq: 4 }, "2026-01-01T00:00:00.000Z");
    expect(JSON.parse(JSON.stringify(verdict))).toEqual({
      aid: 1, cid: 2, mid: 3, action: "review", ruleId: 1,
      hits: [{ ruleId: 1, ownerId: 9, action: "review", priority: 0, matchedMs: 1 }],
      rulesVersion: snap.version, source: { stream: "S", seq: 4 }, decidedAt: "2026-01-01T00:00:00.000Z",
    });
  });
});

describe("the asset index", () => {
  it("finds every asset with all its active rules and no other, over random asset ids (beyond 2^32 too)", () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.oneof(fc.integer({ min: 0, max: 2_000 }), fc.maxSafeNat()), { minLength: 0, maxLength: 300 }), fc.integer({ min: 1, max: 4 }), (assets, rulesPerAsset) => {
        const builder = createRuleTableBuilder();
        const expected = new Map<number, number[]>();
        let propertyId = 1;
        assets.forEach((asset, a) => {
          for (let k = 0; k < rulesPerAsset; k++) {
            const id = a * 10 + k + 1;
            const active = (a + k) % 5 !== 0;
            builder.applyRule(toRuleRow({ id, name: `r${id}`, owner_id: 1, action: "claim", state: active ? 1 : 0 }));
            builder.applyProperty(toPropertyRow({ id: propertyId++, rule_id: id, kind: "asset", value: String(asset) }));
            if (active) expected.set(asset, [...(expected.get(asset) ?? []), id]);
          }
        });
        const snapshot = compileSnapshot(builder.freeze(), { loadKind: "full", loadedAt: "2026-11-29T00:00:00.000Z" });
        const index = snapshot.assetIndex;
        expect(index.slots).toBe(Math.max(8, 2 * expected.size));
        for (const asset of assets) {
          const slot = findAssetSlot(index, asset);
          if (!expected.has(asset)) {
            expect(slot).toBe(-1);
            continue;
          }
          expect(slotAssetId(index, slot)).toBe(asset);
          const ids = Array.from(index.ranks.subarray(slotFirst(index, slot), slotFirst(index, slot) + slotCount(index, slot)), (rank) => snapshot.rules[rank]!.id);
          expect(ids.sort((x, y) => x - y)).toEqual(expected.get(asset));
        }
        for (const absent of [2_001, 2 ** 40 + 3, Number.MAX_SAFE_INTEGER - 1]) if (!assets.includes(absent)) expect(findAssetSlot(index, absent)).toBe(-1);
      }),
      { numRuns: 200 },
    );
  });
});
