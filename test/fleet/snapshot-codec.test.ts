/**
 * The fleet's binary snapshot form: what is read back is the snapshot that was
 * written (same rows, same version, same verdicts as the naive reference), and
 * every kind of damage is refused with a reason, before anything is built.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { decodeSnapshot, encodeSnapshot, readSnapshotHeader, SnapshotFormatError } from "../../src/fleet/snapshot-codec.js";
import { matchResult } from "../../src/match/match-result.js";
import { createRuleTableBuilder } from "../../src/match/rule-table.js";
import { compileSnapshot } from "../../src/match/snapshot.js";
import { SnapshotOverBudgetError } from "../../src/match/snapshot-budget.js";
import { naiveMatch } from "../support/naive-match.js";
import { compile, resultArb, ruleSet, toResult } from "../support/rule-sets.js";

describe("snapshot codec", () => {
  it("reads back the same rows, version and verdicts, over random rule sets with contract-breaking rows", async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 2 ** 31 - 1 }), fc.integer({ min: 0, max: 3_000 }), fc.array(resultArb, { minLength: 1, maxLength: 10 }), async (seed, ruleCount, results) => {
        const set = ruleSet(seed, ruleCount);
        const written = compile(set);
        const read = await decodeSnapshot(await encodeSnapshot(written));
        expect(read.version).toBe(written.version);
        expect(read.loadedAt).toBe(written.loadedAt);
        expect(read.counts).toEqual(written.counts);
        expect(read.skipped).toEqual(written.skipped);
        expect([...read.table.rules.values()]).toEqual([...written.table.rules.values()]);
        expect(read.table.properties).toEqual(written.table.properties);
        expect(read.table.maxMtimeMs).toBe(written.table.maxMtimeMs);
        for (const r of results) {
          const result = toResult(r);
          expect(matchResult(read, result)).toEqual(naiveMatch(set.rules, set.properties, result));
        }
      }),
      { numRuns: 25 },
    );
  });

  it("keeps ids and values beyond 2^32, open validity windows and an empty table", async () => {
    const builder = createRuleTableBuilder();
    builder.applyRule({ id: 2 ** 40, ownerId: 2 ** 50, action: "block", priority: -3, minMatchedMs: 0, minRatioBp: 0, minScore: "0.000", state: 1, validFromMs: null, validToMs: 1_800_000_000_000, isDeleted: 0, mtimeMs: 1 });
    builder.applyProperty({ id: 2 ** 45, ruleId: 2 ** 40, kind: "asset", value: String(2 ** 53 - 1), state: 1, isDeleted: 0, mtimeMs: 2 });
    builder.applyProperty({ id: 2 ** 45 + 1, ruleId: 2 ** 40, kind: "zone", value: "99999999999999999999", state: 1, isDeleted: 0, mtimeMs: 2 });
    const table = builder.freeze();
    const written = compileSnapshot(table, { loadKind: "incremental", loadedAt: "2026-11-29T00:00:00.000Z" });
    const read = await decodeSnapshot(await encodeSnapshot(written));
    expect(read.loadKind).toBe("incremental");
    expect(read.rules).toEqual(written.rules);
    expect(read.table.properties).toEqual(written.table.properties);
    const empty = compileSnapshot(createRuleTableBuilder().freeze(), { loadKind: "full", loadedAt: "2026-11-29T00:00:00.000Z" });
    expect((await decodeSnapshot(await encodeSnapshot(empty))).version).toBe(empty.version);
  });

  it("refuses damaged bytes with a reason: magic, format, length, checksum, and an inflated size over the limit", async () => {
    const bytes = await encodeSnapshot(compile(ruleSet(5, 200)));
    const damaged = (at: number) => {
      const copy = bytes.slice();
      copy[at] = copy[at]! ^ 0xff;
      return copy;
    };
    await expect(decodeSnapshot(damaged(0))).rejects.toThrow(/bad magic/);
    await expect(decodeSnapshot(damaged(8))).rejects.toThrow(/format/);
    await expect(decodeSnapshot(bytes.subarray(0, bytes.length - 1))).rejects.toThrow(/header says/);
    // Every byte of the body is covered by the checksum.
    for (const at of [56, 57, Math.floor(bytes.length / 2), bytes.length - 1]) {
      await expect(decodeSnapshot(damaged(at))).rejects.toThrow(/checksum mismatch/);
    }
    await expect(decodeSnapshot(damaged(30))).rejects.toThrow(/checksum mismatch/); // the checksum itself
    await expect(decodeSnapshot(bytes, { maxRawBytes: 1_000 })).rejects.toThrow(/more than the 1000 allowed/);
    // The snapshot memory budget, estimated from the row counts as a database load does, before anything is built.
    await expect(decodeSnapshot(bytes, { maxSnapshotBytes: 100_000 })).rejects.toThrow(SnapshotOverBudgetError);
    expect((await decodeSnapshot(bytes, { maxSnapshotBytes: 64 * 2 ** 20 })).counts.ruleRows).toBeGreaterThan(0);
    await expect(decodeSnapshot(new Uint8Array(3))).rejects.toThrow(SnapshotFormatError);
    expect(readSnapshotHeader(bytes).bodyBytes).toBe(bytes.length - 56);
  });
});
