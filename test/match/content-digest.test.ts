/**
 * A snapshot's version names its content (spec section 5): equal for the same rows however the
 * table was built, different when any one column of any one row differs.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createRuleTableBuilder, propertyRowProblem, ruleRowProblem, type PropertyRow, type RuleRow } from "../../src/match/rule-table.js";
import { compileSnapshot } from "../../src/match/snapshot.js";
import { compile, ruleSet } from "../support/rule-sets.js";

const build = (rules: readonly RuleRow[], properties: readonly PropertyRow[]) => {
  const b = createRuleTableBuilder();
  rules.forEach((r) => b.applyRule({ ...r }));
  properties.forEach((p) => b.applyProperty(p));
  return compileSnapshot(b.freeze(), { loadKind: "full", loadedAt: "2026-06-01T00:00:00.000Z" });
};

describe("rules version", () => {
  it("is the same for the same rows, whatever order they were applied in or whether they were patched in", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 31 - 1 }), fc.integer({ min: 1, max: 300 }), (seed, n) => {
        const set = ruleSet(seed, n);
        const forward = compile(set);
        const reversed = build([...set.rules].reverse(), [...set.properties].reverse());
        expect(reversed.version).toBe(forward.version);
        // Half the rows first, the rest patched in as an incremental refresh does.
        const half = build(set.rules.slice(0, n >> 1), set.properties.slice(0, set.properties.length >> 1));
        const patch = createRuleTableBuilder(half.table);
        set.rules.slice(n >> 1).forEach((r) => patch.applyRule({ ...r }));
        set.properties.slice(set.properties.length >> 1).forEach((p) => patch.applyProperty(p));
        expect(compileSnapshot(patch.freeze(), { loadKind: "incremental", loadedAt: "x" }).version).toBe(forward.version);
      }),
      { numRuns: 30 },
    );
  });

  it("changes when any one column of any one row changes, the newest mtime and the row counts staying equal", () => {
    const ruleEdits: ((r: RuleRow) => RuleRow)[] = [
      (r) => ({ ...r, ownerId: r.ownerId + 1 }),
      (r) => ({ ...r, action: r.action === "block" ? "claim" : "block" }),
      (r) => ({ ...r, priority: r.priority + 1 }),
      (r) => ({ ...r, minMatchedMs: r.minMatchedMs + 1 }),
      (r) => ({ ...r, minRatioBp: (r.minRatioBp + 1) % 10_000 }),
      (r) => ({ ...r, minScore: r.minScore === "0.500" ? "0.501" : "0.500" }),
      (r) => ({ ...r, state: r.state === 1 ? 0 : 1 }),
      (r) => ({ ...r, validFromMs: r.validFromMs === null ? 1 : null }),
      (r) => ({ ...r, validToMs: r.validToMs === null ? 1 : null }),
      (r) => ({ ...r, isDeleted: r.isDeleted === 1 ? 0 : 1 }),
      (r) => ({ ...r, mtimeMs: r.mtimeMs - 1 }), // an edit of a column the snapshot does not hold (a name) moves mtime
    ];
    const propertyEdits: ((p: PropertyRow) => PropertyRow)[] = [
      (p) => ({ ...p, ruleId: p.ruleId + 1 }),
      (p) => ({ ...p, kind: p.kind === "zone" ? "asset" : "zone" }),
      (p) => ({ ...p, value: p.value === "1" ? "2" : "1" }),
      (p) => ({ ...p, mtimeMs: p.mtimeMs - 1 }),
    ];
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 31 - 1 }), fc.nat(), fc.nat(), fc.boolean(), (seed, which, edit, onRule) => {
        const set = ruleSet(seed, 50);
        // An extra row holds the newest mtime, so no edit below moves it.
        const newest = { ...set.rules[0]!, id: 10_000, mtimeMs: set.rules[0]!.mtimeMs + 1_000 };
        const base = build([...set.rules, newest], set.properties);
        const rules = [...set.rules, newest];
        const properties = [...set.properties];
        // A row that breaks the contract, or a property that does not count, is held by its id, reason
        // and mtime alone: an edit of it shows through its mtime (MySQL moves it on every UPDATE).
        const r = which % set.rules.length;
        const p = which % properties.length;
        const heldWhole = onRule ? ruleRowProblem(rules[r]!) === null : propertyRowProblem(properties[p]!) === null && properties[p]!.state === 1 && properties[p]!.isDeleted === 0;
        if (onRule) rules[r] = (heldWhole ? ruleEdits[edit % ruleEdits.length]! : ruleEdits.at(-1)!)(rules[r]!);
        else properties[p] = (heldWhole ? propertyEdits[edit % propertyEdits.length]! : propertyEdits.at(-1)!)(properties[p]!);
        const edited = build(rules, properties);
        expect(edited.table.maxMtimeMs).toBe(base.table.maxMtimeMs);
        expect(edited.version).not.toBe(base.version);
      }),
      { numRuns: 300 },
    );
  });

  it("names a property's value text, not only its number: 001 is not 1, and two values past 2^53 are not one", async () => {
    const rule: RuleRow = { id: 1, ownerId: 1, action: "block", priority: 1, minMatchedMs: 0, minRatioBp: 0, minScore: "0.500", state: 1, validFromMs: null, validToMs: null, isDeleted: 0, mtimeMs: 1_000 };
    const property = (value: string): PropertyRow => ({ id: 7, ruleId: 1, kind: "asset", value, state: 1, isDeleted: 0, mtimeMs: 1_000 });
    const versionOf = (value: string) => build([rule], [property(value)]).version;
    expect(versionOf("001")).not.toBe(versionOf("1"));
    expect(versionOf("99999999999999999999")).not.toBe(versionOf("99999999999999999998"));
    expect(versionOf("1")).toBe(versionOf("1"));
    // A follower rebuilds the same version from the published snapshot (the codec carries the texts).
    const { encodeSnapshot, decodeSnapshot } = await import("../../src/fleet/snapshot-codec.js");
    const original = build([rule], [property("0042")]);
    expect((await decodeSnapshot(await encodeSnapshot(original))).version).toBe(original.version);
  });
});
