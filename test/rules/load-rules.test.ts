// Datetimes must be UTC whatever the process's time zone: run this file in +08:00.
process.env.TZ = "Asia/Shanghai";

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeResultText } from "../../src/ingest/decode-result.js";
import { matchResult } from "../../src/match/match-result.js";
import { openRuleDatabase, RuleStoreError } from "../../src/rules/database.js";
import { createRuleLoader, parseUtcDatetime } from "../../src/rules/load-rules.js";
import { RULE_ROW_BYTES, SnapshotOverBudgetError } from "../../src/match/snapshot-budget.js";
import { writeRules } from "../../src/seed/write-rules.js";
import { createTestDatabase, type TestDatabase } from "../support/database.js";
import { exampleCases, exampleProperties, exampleRules } from "../fixtures/spec-examples.js";
import type { SeedProperty, SeedRule } from "../../src/seed/generate-dataset.js";

let t: TestDatabase;
const seedRules = (): SeedRule[] =>
  exampleRules.map((r) => ({
    priority: 0, min_matched_ms: 0, min_ratio_bp: 0, min_score: "0.000", state: 1, valid_from: null, valid_to: null, is_deleted: 0, ...r,
  }));
const seedProperties = (): SeedProperty[] => exampleProperties.map((p) => ({ state: 1, is_deleted: 0, ...p }));

beforeAll(async () => {
  t = await createTestDatabase();
  await writeRules(t.database, seedRules(), seedProperties());
});
afterAll(() => t?.drop());

const decide = (snapshot: Parameters<typeof matchResult>[0], input: unknown) => {
  const r = decodeResultText(JSON.stringify(input));
  if (!r.ok) throw new Error(r.reason);
  return matchResult(snapshot, r.value);
};

describe("rule loader", () => {
  it("runs in a non-UTC time zone", () => {
    expect(new Date(0).getTimezoneOffset()).toBe(-480);
  });

  it("reads datetimes as UTC", async () => {
    const snapshot = await createRuleLoader(t.database).loadFull();
    const rule4 = snapshot.table.rules.get(4)!;
    expect(rule4.validFromMs).toBe(Date.UTC(2026, 2, 1));
    expect(rule4.validToMs).toBe(Date.UTC(2026, 2, 2));
    // mtime was set by the server's CURRENT_TIMESTAMP(3) in a UTC session: close to now.
    expect(Math.abs(snapshot.table.maxMtimeMs - Date.now())).toBeLessThan(10 * 60_000);
  });

  it("gives every worked example's verdict from rows read in small keyset pages", async () => {
    const pages: number[] = [];
    const snapshot = await createRuleLoader(t.database, { pageSize: 3 }).loadFull({
      onProgress: (p) => pages.push(p.rows),
    });
    expect(pages.length).toBeGreaterThan(10);
    for (const c of exampleCases) {
      if (c.expect === "dead-letter") continue;
      expect(decide(snapshot, c.input), c.case).toEqual(c.expect);
    }
    expect(snapshot.skipped.map((s) => s.id)).toEqual([10, 11, 16, 17, 18, 19, 20]);
    expect(snapshot.counts).toMatchObject({ ruleRows: 9, skippedRules: 2, skippedProperties: 5, activeRules: 7 });
  });

  it("applies changed rows incrementally and leaves the old snapshot untouched", async () => {
    const loader = createRuleLoader(t.database, { pageSize: 2 });
    const before = await loader.loadFull();
    const song = { aid: 1, cid: 11, mid: 500, tid: 1, durationMs: 240000, recognizedAt: "2026-03-01T08:00:00.000Z", matches: [{ assetId: 9001, startMs: 0, endMs: 90000, score: 0.95 }] };
    expect(decide(before, song).ruleId).toBe(1);

    await t.database.pool.query("UPDATE video_tort_rule SET state = 0 WHERE id = 1");
    await t.database.pool.query("UPDATE video_tort_rule_property SET is_deleted = 1 WHERE id = 4"); // rule 2's asset 9001
    await t.database.pool.query("INSERT INTO video_tort_rule_property (rule_id, kind, value) VALUES (7, 'asset', '9001')");
    await t.database.pool.query("UPDATE video_tort_rule SET action = 'limit' WHERE id = 10"); // repaired row
    const after = await loader.loadChanges(before);

    expect(after.loadKind).toBe("incremental");
    expect(decide(after, song)).toMatchObject({ action: "block", ruleId: 7 });
    expect(after.counts.skippedRules).toBe(1);
    expect(after.version).not.toBe(before.version);
    expect(decide(before, song).ruleId).toBe(1); // old snapshot still serves the old rules

    // A hard delete moves no mtime, but changes the row count: the refresh reads everything.
    await t.database.pool.query("DELETE FROM video_tort_rule WHERE id = 7");
    const deleted = await loader.loadChanges(after);
    expect(deleted.loadKind).toBe("full");
    expect(decide(deleted, song).action).toBe("pass");
    // So does a property deleted outright.
    await t.database.pool.query("UPDATE video_tort_rule SET state = 1 WHERE id = 1");
    const restored = await loader.loadChanges(deleted);
    expect(restored.loadKind).toBe("incremental");
    expect(decide(restored, song).ruleId).toBe(1);
    await t.database.pool.query("DELETE FROM video_tort_rule_property WHERE rule_id = 1 AND kind = 'asset'");
    const withoutAsset = await loader.loadChanges(restored);
    expect(withoutAsset.loadKind).toBe("full");
    expect(decide(withoutAsset, song).ruleId).not.toBe(1);
  });

  it("names content: an edit committed long after its statement ran gives a new version, the one a full read gives", async () => {
    const loader = createRuleLoader(t.database);
    const before = await loader.loadFull();
    // A transaction whose UPDATE ran (and stamped mtime) well before another edit that commits first.
    const late = await t.database.pool.getConnection();
    try {
      await late.query("SET time_zone = '+00:00'");
      await late.beginTransaction();
      // The statement "ran" a minute ago: its mtime lies below the watermark the next read starts from
      // (MTIME_OVERLAP_MS), as a transaction held open for a minute would leave it.
      await late.query("UPDATE video_tort_rule SET priority = priority + 7, mtime = NOW(3) - INTERVAL 60 SECOND WHERE id = 3");
      await t.database.pool.query("UPDATE video_tort_rule SET priority = priority + 1 WHERE id = 5");
      const seen = await loader.loadChanges(before);
      expect(seen.table.rules.get(5)!.priority).toBe(before.table.rules.get(5)!.priority + 1);
      await late.commit();
      // The newest mtime and the row counts are those of `seen`; the content is not.
      const after = await loader.loadChanges(seen);
      expect(after.table.rules.get(3)!.priority).toBe(before.table.rules.get(3)!.priority + 7);
      expect(after.table.maxMtimeMs).toBe(seen.table.maxMtimeMs);
      expect(after.version).not.toBe(seen.version);
      // Whoever reads the same rows, however, names them alike.
      const full = await loader.loadFull();
      expect(full.version).toBe(after.version);
      expect((await loader.loadChanges(full)).version).toBe(full.version);
    } finally {
      late.release();
    }
  });

  it("reads both tables in one consistent snapshot: a transaction committed while the pages are read is wholly in or wholly out", async () => {
    const before = await createRuleLoader(t.database).loadFull();
    const [[maxProperty]] = (await t.database.pool.query({ sql: "SELECT MAX(id) FROM video_tort_rule_property", rowsAsArray: true })) as unknown as [[[number]]];
    let committed: Promise<unknown> | null = null;
    // Two rows apart in the read order: a rule (read in the first pages) and the last property (read last).
    const commit = async () => {
      const conn = await t.database.pool.getConnection();
      try {
        await conn.beginTransaction();
        await conn.query("UPDATE video_tort_rule SET priority = priority + 100 WHERE id = 1");
        await conn.query(`UPDATE video_tort_rule_property SET state = 1 - state WHERE id = ${Number(maxProperty![0])}`);
        await conn.commit();
      } finally {
        conn.release();
      }
    };
    const during = await createRuleLoader(t.database, { pageSize: 2 }).loadFull({
      onProgress: (p) => {
        // After the first page of properties, the transaction commits while the later pages are read.
        if (p.table === "video_tort_rule_property" && committed === null) committed = commit();
      },
      onRowsRead: () => {},
    });
    await committed;
    const after = await createRuleLoader(t.database).loadFull();
    expect(after.version).not.toBe(before.version);
    // Neither half of the transaction, or both: the version is one the tables held.
    expect([before.version, after.version]).toContain(during.version);
  });

  it("abandons a load whose snapshot would exceed its memory budget, while it reads, before the tables are read whole", async () => {
    const [[counts]] = (await t.database.pool.query({ sql: "SELECT (SELECT COUNT(*) FROM video_tort_rule), (SELECT COUNT(*) FROM video_tort_rule_property)", rowsAsArray: true })) as unknown as [[[number, number]]];
    const total = Number(counts![0]) + Number(counts![1]);
    const pages: number[] = [];
    const loader = createRuleLoader(t.database, { pageSize: 2, maxBytes: 5 * RULE_ROW_BYTES, onProgress: (p) => pages.push(p.rows) });
    const err = await loader.loadFull().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SnapshotOverBudgetError);
    const over = err as SnapshotOverBudgetError;
    expect(over.message).toContain("TORT_SNAPSHOT_MAX_MB");
    expect(over.estimateBytes).toBeGreaterThan(over.maxBytes);
    expect(over.rows.rules + over.rows.properties).toBeLessThan(total); // abandoned early
    // A budget that fits: the same loader shape loads.
    expect((await createRuleLoader(t.database, { pageSize: 2, maxBytes: 10 * 2 ** 20 }).loadFull()).counts.ruleRows).toBeGreaterThan(0);
  });

  it("names host and error, never the password, when the database is unreachable", async () => {
    const database = openRuleDatabase({ url: "mysql://tort:s3cr3t-pw@127.0.0.1:1/rules", connectTimeoutMs: 2000 });
    try {
      const err = await createRuleLoader(database).loadFull().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RuleStoreError);
      expect(String((err as Error).message)).toMatch(/127\.0\.0\.1:1.*ECONNREFUSED/);
      expect(String((err as Error).message)).not.toContain("s3cr3t-pw");
    } finally {
      await database.close();
    }
  });
});

describe("parseUtcDatetime", () => {
  it.each([
    ["2026-03-01 00:00:00.000", Date.UTC(2026, 2, 1)],
    ["2026-03-01 00:00:00.000", Date.UTC(2026, 2, 1)], // the cached answer
    ["2026-12-31 23:59:59.999", Date.UTC(2026, 11, 31, 23, 59, 59, 999)],
    ["2026-12-31 23:59:59.5", Date.UTC(2026, 11, 31, 23, 59, 59, 500)],
    ["2026-12-31 23:59:59", Date.UTC(2026, 11, 31, 23, 59, 59)],
  ])("%s", (text, ms) => expect(parseUtcDatetime(text)).toBe(ms));
});
