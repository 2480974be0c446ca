/**
 * `tortmatch seed` on rule tables that already hold rows: refused without --replace; with it, the
 * swap is atomic — a seed killed while it writes leaves the old tables whole, never a mix.
 */
import { spawn } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ruleTableRows } from "../../src/seed/write-rules.js";
import { CLI_ARGS, runCli } from "../support/cli.js";
import type { TestDatabase } from "../support/database.js";
import { eventually } from "../support/nats.js";
import { seededDatabase } from "../support/service.js";

let db: TestDatabase;
beforeAll(async () => {
  db = await seededDatabase();
});
afterAll(() => db?.drop());

const checksum = async () => {
  const [rows] = (await db.database.pool.query("CHECKSUM TABLE video_tort_rule, video_tort_rule_property")) as unknown as [{ Checksum: number }[]];
  return rows.map((r) => r.Checksum);
};

describe("seed", () => {
  it("refuses rule tables that hold rows without --replace, and names what they hold", async () => {
    const before = await ruleTableRows(db.database);
    const run = await runCli(["seed", "--rules", "10", "--properties", "50"], { DATABASE_URL: db.url });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`hold ${before.rules} rules and ${before.properties} properties`);
    expect(run.stderr).toContain("--replace");
    expect(await ruleTableRows(db.database)).toEqual(before);
  });

  it("killed while it writes, it leaves the old tables whole; run again with --replace, it swaps the new ones in", async () => {
    const before = await checksum();
    const child = spawn(process.execPath, [...CLI_ARGS, "seed", "--replace", "--rules", "5000", "--properties", "400000"], {
      env: { ...process.env, DATABASE_URL: db.url, LOG_LEVEL: "warn" },
      stdio: "ignore",
    });
    const exited = new Promise((resolve) => child.on("exit", resolve));
    // Once the new rows are being written (into the staging table), kill it.
    await eventually(async () => {
      const [[row]] = (await db.database.pool.query({ sql: "SELECT COUNT(*) FROM video_tort_rule_property__seeding", rowsAsArray: true }).catch(() => [[[0]]])) as unknown as [[[number]]];
      return Number(row![0]) > 0 || null;
    }, "the seed writing its rows", 60_000, 20);
    child.kill("SIGKILL");
    await exited;
    expect(await checksum()).toEqual(before);
    const done = await runCli(["seed", "--replace", "--rules", "30", "--properties", "200"], { DATABASE_URL: db.url });
    expect(done.code, done.stderr).toBe(0);
    expect(await ruleTableRows(db.database)).toEqual({ rules: 30, properties: 200 });
  });
});
