/**
 * `tortmatch whatif` against an edited copy of the rules (actions changed,
 * rules disabled, thresholds raised), over inputs and the verdicts a running
 * service recorded for them; the expected diff is computed here independently:
 * the naive matcher of spec section 4 on rows read back with plain SQL.
 */
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { decodeResultText } from "../../src/ingest/decode-result.js";
import type { PropertyRow, RuleRow } from "../../src/match/rule-table.js";
import { generateProperties, generateRules } from "../../src/seed/generate-dataset.js";
import { writeRules } from "../../src/seed/write-rules.js";
import { runCli } from "../support/cli.js";
import { createTestDatabase, type TestDatabase } from "../support/database.js";
import { naiveMatch } from "../support/naive-match.js";
import { eventually, publishInputs, readVerdicts, testConfig, uniqueNames } from "../support/nats.js";
import { resultLines, SMALL_DATASET, useServiceHarness } from "../support/service.js";

const h = useServiceHarness();
let candidate: TestDatabase | undefined;
afterAll(() => candidate?.drop());

/** A row as mysql2 returns it; each field is read as its column's type below. */
type DbRow = Record<string, any>;

async function rowsOf(db: TestDatabase): Promise<{ rules: RuleRow[]; properties: PropertyRow[] }> {
  const ms = (d: string | null) => (d === null ? null : Date.parse(`${d.replace(" ", "T")}Z`));
  const [rules] = (await db.database.pool.query("SELECT id, owner_id, action, priority, min_matched_ms, min_ratio_bp, min_score, state, valid_from, valid_to, is_deleted FROM video_tort_rule")) as unknown as [DbRow[]];
  const [props] = (await db.database.pool.query("SELECT id, rule_id, kind, value, state, is_deleted FROM video_tort_rule_property")) as unknown as [DbRow[]];
  return {
    rules: rules.map((r) => ({ id: r.id, ownerId: r.owner_id, action: r.action, priority: r.priority, minMatchedMs: r.min_matched_ms, minRatioBp: r.min_ratio_bp, minScore: r.min_score, state: r.state, validFromMs: ms(r.valid_from), validToMs: ms(r.valid_to), isDeleted: r.is_deleted, mtimeMs: 0 })),
    properties: props.map((p) => ({ id: p.id, ruleId: p.rule_id, kind: p.kind, value: p.value, state: p.state, isDeleted: p.is_deleted, mtimeMs: 0 })),
  };
}

describe("whatif", () => {
  it("compares the candidate rules' verdicts with the recorded ones: the transitions, the changed inputs, nothing else", async () => {
    const names = uniqueNames();
    const config = testConfig(h.db.url, names);
    const lines = resultLines(800, 0.02);
    const seqs = await publishInputs(h.nc, config, lines);
    const service = await h.start(config);
    await eventually(() => service.stats.settled === lines.length, "every input settled", 30_000);
    await service.stop();

    // The candidate: the same rules, edited.
    candidate = await createTestDatabase("tortmatch_candidate");
    await writeRules(candidate.database, generateRules(SMALL_DATASET), generateProperties(SMALL_DATASET));
    await candidate.database.pool.query("UPDATE video_tort_rule SET action = 'block' WHERE id % 7 = 0");
    await candidate.database.pool.query("UPDATE video_tort_rule SET state = 0 WHERE id % 11 = 0");
    await candidate.database.pool.query("UPDATE video_tort_rule SET min_matched_ms = min_matched_ms + 60000 WHERE id % 5 = 0");

    // Expected, independently: the naive matcher on the candidate's rows, against the recorded verdicts.
    const rows = await rowsOf(candidate);
    const recorded = new Map((await readVerdicts(h.nc, config)).map((v) => [v.verdict.source.seq, v.verdict as unknown as { action: string; ruleId: number | null }]));
    const expected = { inputs: 0, compared: 0, changed: 0, unchanged: 0, invalid: 0, noVerdict: 0, transitions: {} as Record<string, number> };
    const changedSeqs: number[] = [];
    lines.forEach((line, i) => {
      expected.inputs++;
      const checked = decodeResultText(line);
      if (!checked.ok) return void expected.invalid++;
      const before = recorded.get(seqs[i]!);
      if (before === undefined) return void expected.noVerdict++;
      expected.compared++;
      const after = naiveMatch(rows.rules, rows.properties, checked.value);
      if (after.action === before.action && after.ruleId === before.ruleId) return void expected.unchanged++;
      expected.changed++;
      changedSeqs.push(seqs[i]!);
      const key = `${before.action}->${after.action}`;
      expected.transitions[key] = (expected.transitions[key] ?? 0) + 1;
    });
    expect(expected.changed).toBeGreaterThan(20); // the edits matter
    expect(expected.invalid).toBeGreaterThan(0);

    const dir = mkdtempSync(join(tmpdir(), "tortmatch-whatif-"));
    const run = await runCli(["whatif", "--rules-database", candidate.url, "--json", "--out", join(dir, "changed.ndjson")], { ...names, DATABASE_URL: h.db.url });
    expect(run.code, run.stderr).toBe(0);
    const stdout = run.stdout.trim().split("\n");
    expect(JSON.parse(stdout.at(-1)!)).toEqual(expected);
    expect(run.stdout).toMatch(/rules that gained or lost the most hits:\n {2}rule \d+: \d+ -> \d+/);
    type V = { action: string; ruleId: number | null; rulesVersion: string };
    const out = readFileSync(join(dir, "changed.ndjson"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as { source: { seq: number }; before: V; after: V });
    expect(out.map((o) => o.source.seq).sort((a, b) => a - b)).toEqual(changedSeqs);
    for (const o of out) {
      expect([o.before.action, o.before.ruleId]).not.toEqual([o.after.action, o.after.ruleId]);
      expect(o.after.rulesVersion).not.toBe(o.before.rulesVersion);
    }

    // Only the later half: --from-seq.
    const half = await runCli(["whatif", "--rules-database", candidate.url, "--json", "--from-seq", String(seqs[400])], { ...names, DATABASE_URL: h.db.url });
    expect(JSON.parse(half.stdout.trim().split("\n").at(-1)!).inputs).toBe(400);

    // Nothing stored in the last two seconds (an idle stream): a summary with nothing compared, not a wait for ever.
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    const idle = await runCli(["whatif", "--rules-database", candidate.url, "--json", "--since", "2s"], { ...names, DATABASE_URL: h.db.url }, 30_000);
    expect(idle.code).toBe(0);
    expect(JSON.parse(idle.stdout.trim().split("\n").at(-1)!)).toMatchObject({ inputs: 0, compared: 0 });

    // An edit goes live after the verdicts were recorded (the candidate has it too): compared with the
    // recorded verdicts it would count as the candidate's; --baseline live compares with the live rules.
    await h.db.database.pool.query("UPDATE video_tort_rule SET action = 'block' WHERE id % 7 = 0");
    const liveRows = await rowsOf(h.db);
    const vsLive = { inputs: 0, compared: 0, changed: 0, unchanged: 0, invalid: 0, noVerdict: 0, transitions: {} as Record<string, number>, baseline: "live" };
    for (const line of lines) {
      vsLive.inputs++;
      const checked = decodeResultText(line);
      if (!checked.ok) {
        vsLive.invalid++;
        continue;
      }
      vsLive.compared++;
      const before = naiveMatch(liveRows.rules, liveRows.properties, checked.value);
      const after = naiveMatch(rows.rules, rows.properties, checked.value);
      if (after.action === before.action && after.ruleId === before.ruleId) {
        vsLive.unchanged++;
        continue;
      }
      vsLive.changed++;
      const key = `${before.action}->${after.action}`;
      vsLive.transitions[key] = (vsLive.transitions[key] ?? 0) + 1;
    }
    expect(vsLive.changed).toBeLessThan(expected.changed); // the live edit is no longer the candidate's
    const live = await runCli(["whatif", "--rules-database", candidate.url, "--json", "--baseline", "live"], { ...names, DATABASE_URL: h.db.url });
    expect(live.code, live.stderr).toBe(0);
    expect(JSON.parse(live.stdout.trim().split("\n").at(-1)!)).toEqual(vsLive);
    expect(live.stdout).toMatch(/compared with the live rules .* \(DATABASE_URL\), both computed over the same inputs/);
  });
});
