/**
 * Scale-out: three instances share the durable consumer, as a fleet (spec
 * section 9). The rules are read once in all (by the leader; the others fetch
 * its snapshot); one change notice brings all three to the new version with one
 * more read; the output still has exactly one verdict per input.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../test/support/nats-server.js";
import type { Config } from "../src/config.js";
import { decodeResultText } from "../src/ingest/decode-result.js";
import { spawnService, type SpawnedService } from "../test/support/cli.js";
import type { TestDatabase } from "../test/support/database.js";
import { accountFor, connectTest, consumerState, eventually, publishInputs, readStream, removeTopology, testConfig, uniqueNames } from "../test/support/nats.js";
import { resultLines, seededDatabase } from "../test/support/service.js";

const RESULTS = Number(process.env.SCALE_RESULTS ?? 30_000);
let db: TestDatabase;
let nc: NatsConnection;
let config: Config;
let env: Record<string, string>;
const instances: { service: SpawnedService; port: number }[] = [];

const status = async (port: number) =>
  (await fetch(`http://127.0.0.1:${port}/status.json`)).json() as Promise<{ ruleCache: { loads: number; state: string }; snapshot: { version: string } | null; flow: { received: number }; fleet: { role: string } }>;
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

beforeAll(async () => {
  db = await seededDatabase();
  nc = await connectTest();
  env = { ...uniqueNames(), DATABASE_URL: db.url, LOG_LEVEL: "warn", TORT_CONCURRENCY: "32", TORT_REFRESH_INTERVAL_MS: "0" };
  config = testConfig(db.url, env);
});
afterAll(async () => {
  for (const { service } of instances) service.child.kill("SIGKILL");
  await removeTopology(nc, config).catch(() => {});
  await nc?.drain();
  await db?.drop();
});

describe("scale-out", () => {
  it("three instances on one durable consumer: one load in all, one notice refreshes all with one more, one verdict per input", async () => {
    // The topology first (one instance creates it), then all three.
    await publishInputs(nc, config, []);
    for (let k = 0; k < 3; k++) {
      const port = await freePort();
      instances.push({ service: spawnService({ ...env, TORT_OPS_PORT: String(port) }), port });
    }
    const ready = await eventually(async () => {
      const all = await Promise.all(instances.map(({ port }) => status(port).catch(() => null)));
      return all.every((s) => s?.ruleCache.state === "ready") ? all : null;
    }, "three instances ready", 60_000);
    expect(sum(ready!.map((s) => s!.ruleCache.loads))).toBe(1);
    expect(ready!.map((s) => s!.fleet.role).sort()).toEqual(["follower", "follower", "leader"]);
    const firstVersion = ready![0]!.snapshot!.version;

    const lines = resultLines(RESULTS, 0.005);
    const half = Math.floor(lines.length / 2);
    const seqs = await publishInputs(nc, config, lines.slice(0, half));
    // Rules change mid-run: one notice, every instance refreshes (and only once).
    await db.database.pool.query("UPDATE video_tort_rule SET priority = priority + 1 WHERE id <= 50");
    nc.publish(config.TORT_RULES_CHANGED_SUBJECT);
    const refreshed = await eventually(async () => {
      const all = await Promise.all(instances.map(({ port }) => status(port)));
      return all.every((s) => s.ruleCache.state === "ready" && s.snapshot!.version !== firstVersion) ? all : null;
    }, "all three refreshed", 30_000);
    expect(sum(refreshed!.map((s) => s.ruleCache.loads))).toBe(2);
    expect(new Set(refreshed!.map((s) => s.snapshot!.version)).size).toBe(1);
    seqs.push(...(await publishInputs(nc, config, lines.slice(half))));

    await eventually(async () => {
      const s = await consumerState(nc, config);
      return s.pending === 0 && s.ackPending === 0;
    }, "everything settled", 300_000, 200);
    const shares = (await Promise.all(instances.map(({ port }) => status(port)))).map((s) => s.flow.received);
    const verdictSeqs = (await readStream(nc, config.TORT_VERDICT_STREAM)).map((m) => m.json<{ source: { seq: number } }>().source.seq);
    const deadSeqs = (await readStream(nc, config.TORT_DEADLETTER_STREAM)).map((m) => Number(m.headers!.get("Tort-Source-Seq")));
    const { lost, duplicated, strays } = accountFor(seqs.map((seq, i) => ({ seq, valid: decodeResultText(lines[i]!).ok })), verdictSeqs, deadSeqs);
    console.log(`scale-out: ${RESULTS} inputs over 3 instances (received ${shares.join(" / ")}), loads per instance ${refreshed!.map((s) => s.ruleCache.loads).join("/")} (the leader: 1 + 1 refresh), verdicts ${verdictSeqs.length}, dead letters ${deadSeqs.length}, lost = ${lost.length}, duplicated = ${duplicated.length}`);
    expect(shares.every((n) => n > 0)).toBe(true);
    expect(duplicated).toEqual([]);
    expect(lost).toEqual([]);
    expect(strays).toEqual([]);
    for (const { service } of instances) service.child.kill("SIGTERM");
    expect(await Promise.all(instances.map(({ service }) => service.exited))).toEqual([0, 0, 0]);
  });
});
