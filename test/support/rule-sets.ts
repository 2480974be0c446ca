/**
 * Random rule sets of spec section 2 (including rows that break the contract)
 * and recognition results over them, shared by the property tests.
 */
import fc from "fast-check";
import { decodeResultText } from "../../src/ingest/decode-result.js";
import { createRuleTableBuilder, type PropertyRow, type RuleRow } from "../../src/match/rule-table.js";
import { compileSnapshot, type RuleSnapshot } from "../../src/match/snapshot.js";
import type { RecognitionResult } from "../../src/match/types.js";
import { createRandom, generateProperties, generateRules, type DatasetOptions } from "../../src/seed/generate-dataset.js";

export const T0 = Date.parse("2026-06-01T00:00:00Z");
export const ASSETS = 120; // few assets for 5,000+ rules: each is shared by dozens of rules
const SCORES = ["0.000", "0.500", "0.800", "0.930", "1.000"];
const ACTIONS = ["block", "limit", "review", "claim", "claim", "BLOCK"];

export function ruleSet(seed: number, ruleCount: number): { rules: RuleRow[]; properties: PropertyRow[] } {
  const rnd = createRandom(seed);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rnd() * xs.length)]!;
  const rules: RuleRow[] = [];
  const properties: PropertyRow[] = [];
  let propertyId = 1;
  for (let id = 1; id <= ruleCount; id++) {
    const window = rnd();
    rules.push({
      id,
      ownerId: 1 + Math.floor(rnd() * 50),
      action: pick(ACTIONS),
      priority: Math.floor(rnd() * 4),
      minMatchedMs: pick([0, 0, 1_000, 30_000, 120_000]),
      minRatioBp: pick([0, 0, 100, 2_500, 5_000, 10_000, 10_001]),
      minScore: pick(SCORES),
      state: rnd() < 0.9 ? 1 : 0,
      validFromMs: window < 0.1 ? T0 + 60_000 : window < 0.2 ? T0 - 60_000 : null,
      validToMs: window > 0.9 ? T0 : window > 0.8 ? T0 + 60_000 : null,
      isDeleted: rnd() < 0.05 ? 1 : 0,
      mtimeMs: T0,
    });
    const assets = 1 + Math.floor(rnd() * 3);
    for (let k = 0; k < assets; k++) {
      const asset = 1 + Math.floor(rnd() * ASSETS);
      properties.push({ id: propertyId++, ruleId: id, kind: "asset", value: rnd() < 0.1 ? `00${asset}` : String(asset), state: rnd() < 0.95 ? 1 : 0, isDeleted: 0, mtimeMs: T0 });
    }
    if (rnd() < 0.2) properties.push({ id: propertyId++, ruleId: id, kind: "zone", value: String(Math.floor(rnd() * 4)), state: 1, isDeleted: 0, mtimeMs: T0 });
    if (rnd() < 0.1) properties.push({ id: propertyId++, ruleId: id, kind: "exempt_mid", value: String(1 + Math.floor(rnd() * 4)), state: 1, isDeleted: rnd() < 0.3 ? 1 : 0, mtimeMs: T0 });
    if (rnd() < 0.02) properties.push({ id: propertyId++, ruleId: id, kind: pick(["Asset", "asset"]), value: pick(["+5", " 5", "", "5x"]), state: 1, isDeleted: 0, mtimeMs: T0 });
  }
  // A property whose rule does not exist.
  properties.push({ id: propertyId++, ruleId: ruleCount + 10, kind: "asset", value: "1", state: 1, isDeleted: 0, mtimeMs: T0 });
  return { rules, properties };
}

export function compile(set: { rules: RuleRow[]; properties: PropertyRow[] }): RuleSnapshot {
  const builder = createRuleTableBuilder();
  set.rules.forEach((r) => builder.applyRule({ ...r }));
  set.properties.forEach((p) => builder.applyProperty(p));
  return compileSnapshot(builder.freeze(), { loadKind: "full", loadedAt: new Date(T0).toISOString() });
}

/** The seed command's generated rules (src/seed), as the loader hands their rows over, compiled. */
export function generatedSnapshot(dataset: DatasetOptions): RuleSnapshot {
  const rules = [...generateRules(dataset)].map((r): RuleRow => ({
    id: r.id, ownerId: r.owner_id, action: r.action, priority: r.priority, minMatchedMs: r.min_matched_ms, minRatioBp: r.min_ratio_bp,
    minScore: r.min_score, state: r.state, validFromMs: r.valid_from === null ? null : Date.parse(r.valid_from),
    validToMs: r.valid_to === null ? null : Date.parse(r.valid_to), isDeleted: r.is_deleted, mtimeMs: 1,
  }));
  const properties = [...generateProperties(dataset)].map((p): PropertyRow => ({ id: p.id, ruleId: p.rule_id, kind: p.kind, value: p.value, state: p.state, isDeleted: p.is_deleted, mtimeMs: 1 }));
  return compile({ rules, properties });
}

export const item = fc.record({
  assetId: fc.integer({ min: 1, max: ASSETS + 5 }),
  startMs: fc.integer({ min: 0, max: 400_000 }),
  length: fc.integer({ min: 1, max: 200_000 }),
  score: fc.oneof(fc.constantFrom(0, 0.5, 0.8, 0.93, 1), fc.double({ min: 0, max: 1, noNaN: true })),
});
export const resultArb = fc.record({
  mid: fc.integer({ min: 1, max: 5 }),
  tid: fc.integer({ min: 0, max: 4 }),
  durationMs: fc.integer({ min: 1, max: 300_000 }),
  offsetMs: fc.constantFrom(-120_000, -60_000, -1, 0, 1, 59_999, 60_000, 120_000),
  // Repeats of one asset are likely: items are drawn from few assets, and some are cloned.
  items: fc.array(item, { maxLength: 40 }),
  repeatAsset: fc.integer({ min: 1, max: ASSETS }),
  repeats: fc.integer({ min: 0, max: 12 }),
});

export type ResultDraft = typeof resultArb extends fc.Arbitrary<infer U> ? U : never;

export function toResult(r: ResultDraft): RecognitionResult {
  const matches = r.items.map((m) => ({ assetId: m.assetId, startMs: m.startMs, endMs: m.startMs + m.length, score: m.score }));
  for (let k = 0; k < r.repeats; k++) matches.push({ assetId: r.repeatAsset, startMs: 10_000 * k, endMs: 10_000 * k + 15_000, score: 1 });
  const text = JSON.stringify({
    aid: 1, cid: 2, mid: r.mid, tid: r.tid, durationMs: r.durationMs,
    recognizedAt: new Date(T0 + r.offsetMs).toISOString(), matches,
  });
  const checked = decodeResultText(text);
  if (!checked.ok) throw new Error(checked.reason);
  return checked.value;
}

