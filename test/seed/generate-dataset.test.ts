import { describe, expect, it } from "vitest";
import { createRuleTableBuilder } from "../../src/match/rule-table.js";
import { compileSnapshot, slotCount } from "../../src/match/snapshot.js";
import { generateProperties, generateResultLines, generateRules } from "../../src/seed/generate-dataset.js";
import { decodeResultText } from "../../src/ingest/decode-result.js";
import { toPropertyRow, toRuleRow } from "../fixtures/rows.js";

const options = { rules: 2_000, properties: 30_000, seed: 7 };

describe("seed dataset", () => {
  it("is deterministic and has exactly the sizes asked for", () => {
    const a = [...generateProperties(options)];
    expect(a).toEqual([...generateProperties(options)]);
    expect(a).toHaveLength(30_000);
    expect([...generateRules(options)]).toHaveLength(2_000);
    expect([...generateProperties({ ...options, seed: 8 })]).not.toEqual(a);
  });

  it("has shared assets, zones, exempt uploaders, disabled, deleted, windowed and contract-breaking rows", () => {
    const rules = [...generateRules(options)];
    const properties = [...generateProperties(options)];
    const builder = createRuleTableBuilder();
    rules.forEach((r) => builder.applyRule(toRuleRow(r)));
    properties.forEach((p) => builder.applyProperty(toPropertyRow(p)));
    const snapshot = compileSnapshot(builder.freeze(), { loadKind: "full", loadedAt: "2026-01-01T00:00:00.000Z" });
    expect(snapshot.counts.skippedRules).toBeGreaterThan(0);
    expect(snapshot.counts.skippedProperties).toBeGreaterThan(0);
    expect(rules.some((r) => r.state === 0) && rules.some((r) => r.is_deleted === 1) && rules.some((r) => r.valid_from !== null)).toBe(true);
    expect(properties.some((p) => p.kind === "zone") && properties.some((p) => p.kind === "exempt_mid")).toBe(true);
    expect(properties.some((p) => p.state === 0) && properties.some((p) => p.is_deleted === 1)).toBe(true);
    const index = snapshot.assetIndex;
    let most = 0;
    for (let s = 0; s < index.slots; s++) most = Math.max(most, slotCount(index, s));
    expect(most).toBeGreaterThan(10); // popular assets are shared by many rules
  });

  it("writes results that are valid but for a small share", () => {
    const lines = [...generateResultLines({ ...options, results: 2_000 })];
    const invalid = lines.filter((l) => !decodeResultText(l).ok).length;
    expect(invalid).toBeGreaterThan(0);
    expect(invalid).toBeLessThan(40);
  });
});
