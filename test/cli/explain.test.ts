/** `tortmatch explain` on the command line and on a running instance's `tort.explain` endpoint: the same answer, from the same rules. */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { decodeResultText } from "../../src/ingest/decode-result.js";
import { matchResult } from "../../src/match/match-result.js";
import { createRuleLoader } from "../../src/rules/load-rules.js";
import { runCli } from "../support/cli.js";
import { eventually, testConfig } from "../support/nats.js";
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
  });
});
