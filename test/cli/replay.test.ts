import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeRules } from "../../src/seed/write-rules.js";
import { runCli } from "../support/cli.js";
import { createTestDatabase, type TestDatabase } from "../support/database.js";
import { exampleCases, exampleProperties, exampleRules } from "../fixtures/spec-examples.js";

let t: TestDatabase;
const dir = mkdtempSync(join(tmpdir(), "tortmatch-replay-"));

beforeAll(async () => {
  t = await createTestDatabase();
  await writeRules(
    t.database,
    exampleRules.map((r) => ({ priority: 0, min_matched_ms: 0, min_ratio_bp: 0, min_score: "0.000", state: 1, valid_from: null, valid_to: null, is_deleted: 0, ...r })),
    exampleProperties.map((p) => ({ state: 1, is_deleted: 0, ...p })),
  );
});
afterAll(() => t?.drop());

describe("tortmatch replay", () => {
  it("writes one verdict per valid line, reports invalid lines with their numbers, and sums up", async () => {
    const lines = exampleCases.map((c) => ("raw" in c ? c.raw.replaceAll("\n", " ") : JSON.stringify(c.input)));
    const input = join(dir, "in.ndjson");
    const output = join(dir, "out.ndjson");
    writeFileSync(input, `${lines.join("\n")}\n`);

    const run = await runCli(["replay", "--in", input, "--out", output], { DATABASE_URL: t.url });
    expect(run.code, run.stderr).toBe(0);

    const verdicts = readFileSync(output, "utf8").trim().split("\n").map((l) => JSON.parse(l));
    const expected = exampleCases.filter((c) => c.expect !== "dead-letter");
    expect(verdicts).toHaveLength(expected.length);
    verdicts.forEach((v, k) => {
      const c = expected[k] as { input: { aid: number }; expect: object };
      expect(v).toMatchObject({ ...c.expect, aid: c.input.aid, source: null });
      expect(v.rulesVersion).toMatch(/\/9r\/\d+p$/);
      expect(Date.parse(v.decidedAt)).not.toBeNaN();
    });

    exampleCases.forEach((c, k) => {
      if (c.expect === "dead-letter") expect(run.stderr).toContain(`${input}:${k + 1}: invalid: `);
    });
    const invalid = exampleCases.length - expected.length;
    expect(run.stderr).toContain(`replay: ${exampleCases.length} lines, ${expected.length} verdicts, ${invalid} invalid lines`);
    const count = (action: string) => expected.filter((c) => (c.expect as { action: string }).action === action).length;
    expect(run.stderr).toContain(`verdicts: block ${count("block")}, limit ${count("limit")}, review ${count("review")}, claim ${count("claim")}, pass ${count("pass")}`);
    expect(run.stderr).toContain("rows skipped: 2 rule, 5 property");
  });

  it("fails with the host and error, not the password, when the database is unreachable", async () => {
    const input = join(dir, "one.ndjson");
    writeFileSync(input, "{}\n");
    const run = await runCli(["replay", "--in", input], { DATABASE_URL: "mysql://tort:pa55word@127.0.0.1:1/rules" });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^tortmatch: loading rules \(full\) from mysql:\/\/tort@127\.0\.0\.1:1\/rules failed: ECONNREFUSED/m);
    expect(run.stderr).not.toContain("pa55word");
  });

  it("rejects a bad configuration value by name", async () => {
    const run = await runCli(["replay", "--in", "/dev/null"], { TORT_LOAD_PAGE_SIZE: "ten" });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/TORT_LOAD_PAGE_SIZE \(--load-page-size\): must be an integer from 100 to 100000/);
  });
});

describe("tortmatch db migrate", () => {
  it("is safe to run twice", async () => {
    for (let k = 0; k < 2; k++) {
      const run = await runCli(["db", "migrate"], { DATABASE_URL: t.url });
      expect(run.code, run.stderr).toBe(0);
    }
    const [rows] = await t.database.pool.query("SELECT COUNT(*) AS n FROM __drizzle_migrations");
    expect((rows as { n: number }[])[0]!.n).toBe(2);
  });
});
