/**
 * `tortmatch demo` end to end: it seeds, drains its burst with one rule load,
 * prints its summary, and leaves nothing behind on NATS — its streams and its
 * buckets (its fleet is its own: it never leads or follows a real one).
 */
import { jetstreamManager } from "@nats-io/jetstream";
import { randomBytes } from "node:crypto";
import mysql from "mysql2/promise";
import { afterAll, describe, expect, it } from "vitest";
import { runCli } from "../support/cli.js";
import { TEST_SERVER_URL } from "../support/database.js";
import { connectTest } from "../support/nats.js";

const name = `tortmatch_demo_test_${randomBytes(4).toString("hex")}`;
const url = new URL(TEST_SERVER_URL);
url.pathname = `/${name}`;

afterAll(async () => {
  const admin = await mysql.createConnection({ uri: TEST_SERVER_URL });
  await admin.query(`DROP DATABASE IF EXISTS \`${name}\``);
  await admin.end();
});

const demoStreams = async (): Promise<string[]> => {
  const nc = await connectTest();
  try {
    const names: string[] = [];
    for await (const n of (await jetstreamManager(nc)).streams.names()) if (/^(DEMO_|KV_demo_|OBJ_demo_)|^(KV_tort_rules|OBJ_tort_snapshots)$/.test(n)) names.push(n);
    return names.sort();
  } finally {
    await nc.drain();
  }
};

describe("tortmatch demo", () => {
  it("drains its burst with one rule load, and removes its streams and buckets", async () => {
    const before = await demoStreams();
    const run = await runCli(["demo", "--results", "500"], { DATABASE_URL: url.toString() }, 180_000);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/rule loads:\s+1 \(snapshot /);
    expect(run.stdout).toMatch(/verdicts:\s+block \d+/);
    expect(await demoStreams()).toEqual(before);
  });
});
