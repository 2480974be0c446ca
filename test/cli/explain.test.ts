/** `tortmatch explain` on the command line and on a running instance's `tort.explain` endpoint: the same answer, from the same rules. */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { decodeResultText } from "../../src/ingest/decode-result.js";
import { matchResult } from "../../src/match/match-result.js";
import { createRuleLoader } from "../../src/rules/load-rules.js";
import { runCli } from "../support/cli.js";
import { eventually, publishInputs, readVerdicts, testConfig } from "../support/nats.js";
import { resultLines, useServiceHarness } from "../support/service.js";

const h = useServiceHarness();

describe("explain", () => {
  it("prints, for each rule naming the result's assets, hit or the first failed condition; the service endpoint answers the same", async () => {
    const snapshot = await createRuleLoader(h.db.database).loadFull();
    // A result that some rule hits and others miss.
    const line = resultLines(400).find((l) => {
      const c = decodeResultText(l);
      return c.ok && matchResult(snapshot, c.value).hits.length > 0 && c.value.matches.length > 1;
    })!;
    const expected = matchResult(snapshot, (decodeResultText(line) as { ok: true; value: Parameters<typeof matchResult>[1] }).value);
    const dir = mkdtempSync(join(tmpdir(), "tortmatch-explain-"));
    writeFileSync(join(dir, "one.json"), `${line}\n`);

    const text = await runCli(["explain", "--in", join(dir, "one.json")], { DATABASE_URL: h.db.url });
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain(`rule ${expected.ruleId} (${expected.action}, priority ${expected.hits[0]!.priority}): hit, matched ${expected.hits[0]!.matchedMs} ms`);
    expect(text.stdout).toMatch(new RegExp(`verdict: ${expected.action} \\(rule ${expected.ruleId}\\)`));

    const json = await runCli(["explain", "--json", "--in", join(dir, "one.json")], { DATABASE_URL: h.db.url });
    const cli = JSON.parse(json.stdout) as { action: string; ruleId: number; rules: { ruleId: number; hit: boolean }[] };
    expect(cli).toMatchObject({ action: expected.action, ruleId: expected.ruleId, rulesVersion: snapshot.version });
    expect(cli.rules.filter((r) => r.hit).map((r) => r.ruleId)).toEqual(expected.hits.map((x) => x.ruleId));

    const config = testConfig(h.db.url);
    const service = await h.start(config);
    await eventually(() => service.snapshot$.value, "first snapshot");
    const reply = (await h.nc.request(config.TORT_EXPLAIN_SUBJECT, line, { timeout: 5_000 })).json();
    expect(reply).toEqual(cli);
    const bad = (await h.nc.request(config.TORT_EXPLAIN_SUBJECT, "{}", { timeout: 5_000 })).json<{ error: string }>();
    expect(bad.error).toMatch(/^not a valid recognition result: /);

    const invalid = await runCli(["explain", "--in", join(dir, "missing.json")], { DATABASE_URL: h.db.url });
    expect(invalid.code).toBe(1);

    // The same from the command line, without the nats CLI: --from-fleet asks the running instance.
    const env = Object.fromEntries(Object.entries(config).filter(([, v]) => typeof v === "string")) as Record<string, string>;
    const fromFleet = await runCli(["explain", "--from-fleet", "--json", "--in", join(dir, "one.json")], env);
    expect(fromFleet.code, fromFleet.stderr).toBe(0);
    expect(JSON.parse(fromFleet.stdout)).toEqual(cli);
    const nobody = await runCli(["explain", "--from-fleet", "--in", join(dir, "one.json")], { ...env, TORT_EXPLAIN_SUBJECT: `${config.TORT_EXPLAIN_SUBJECT}.nobody` });
    expect(nobody.code).toBe(1);
    expect(nobody.stderr).toContain("is one running (tortmatch fleet)?");
  });

  it("tortmatch verdicts prints the verdicts a running instance published, newest last, as lines or NDJSON", async () => {
    const config = testConfig(h.db.url);
    const env = Object.fromEntries(Object.entries(config).filter(([, v]) => typeof v === "string")) as Record<string, string>;
    const service = await h.start(config);
    await eventually(() => service.snapshot$.value, "first snapshot");
    const empty = await runCli(["verdicts"], env);
    expect(empty.code, empty.stderr).toBe(0);
    expect(empty.stderr).toContain(`no verdicts in ${config.TORT_VERDICT_STREAM}`);
    const lines = resultLines(30, 0);
    const seqs = await publishInputs(h.nc, config, lines);
    await eventually(async () => (await readVerdicts(h.nc, config)).length === lines.length || null, "every verdict", 30_000, 100);
    const json = await runCli(["verdicts", "--json", "--last", "5"], env);
    expect(json.code, json.stderr).toBe(0);
    const shown = json.stdout.trim().split("\n").map((l) => JSON.parse(l) as { source: { seq: number } });
    expect(shown).toHaveLength(5);
    const all = (await readVerdicts(h.nc, config)).map((v) => v.verdict.source.seq);
    expect(shown.map((v) => v.source.seq)).toEqual(all.slice(-5));
    expect(seqs).toEqual(expect.arrayContaining(shown.map((v) => v.source.seq)));
    const text = await runCli(["verdicts", "--last", "0"], env);
    expect(text.stdout.trim().split("\n")).toHaveLength(lines.length);
    expect(text.stdout).toMatch(/^\s+\d+ {2}(block|limit|review|claim|pass) /m);
  });
});
