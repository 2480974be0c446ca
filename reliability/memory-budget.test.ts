/**
 * Rule data that no longer fits: the property table grows 20x while the
 * service runs under --max-old-space-size=192 with TORT_SNAPSHOT_MAX_MB below
 * that. The full reload that follows is abandoned while it reads; the process
 * does not crash, the old snapshot keeps serving, and the metric and the log
 * line say what happened.
 */
import { connect } from "@nats-io/transport-node";
import { afterAll, describe, expect, it } from "vitest";
import { generateProperties, generateRules } from "../src/seed/generate-dataset.js";
import { writeRules } from "../src/seed/write-rules.js";
import { spawnService, type SpawnedService } from "../test/support/cli.js";
import { createTestDatabase, type TestDatabase } from "../test/support/database.js";
import { freePort } from "../test/support/nats-server.js";
import { eventually, publishInputs, readVerdicts, removeTopology, testConfig, uniqueNames } from "../test/support/nats.js";
import { memoryOf } from "../test/support/process-memory.js";
import { metricValue } from "../test/support/metrics.js";
import { resultLines } from "../test/support/service.js";

const DATASET = { rules: 5_000, properties: 180_000, seed: 42 };
const cleanups: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});


describe("memory budget", () => {
  it("the property table grown 20x while running: the reload is abandoned, no crash, the old snapshot serves", async () => {
    const db: TestDatabase = await createTestDatabase();
    cleanups.push(() => db.drop());
    await writeRules(db.database, generateRules(DATASET), generateProperties(DATASET));
    const opsPort = await freePort();
    const env = { ...uniqueNames(), DATABASE_URL: db.url, LOG_LEVEL: "info", TORT_OPS_PORT: String(opsPort), TORT_SNAPSHOT_MAX_MB: "96", TORT_REFRESH_INTERVAL_MS: "0", TORT_RETRY_BASE_MS: "2000", TORT_RETRY_MAX_MS: "10000" };
    const config = testConfig(db.url, env);
    const nc = await connect({ servers: config.NATS_URL });
    cleanups.push(async () => {
      await removeTopology(nc, config);
      await nc.drain();
    });
    const service: SpawnedService = spawnService(env, ["--max-old-space-size=192"]);
    cleanups.push(async () => {
      service.child.kill("SIGTERM");
      await service.exited;
    });
    const ops = (path: string) => fetch(`http://127.0.0.1:${opsPort}/${path}`);
    await eventually(async () => (await ops("readyz")).status === 200, "ready on the seeded rules", 60_000, 250);
    const before = ((await (await ops("status.json")).json()) as { snapshot: { version: string } }).snapshot.version;

    // 180k → 3.6M property rows: four doublings and one more million.
    const copy = "INSERT INTO video_tort_rule_property (rule_id, kind, value, state, is_deleted) SELECT rule_id, kind, value, state, is_deleted FROM video_tort_rule_property";
    for (let k = 0; k < 4; k++) await db.database.pool.query(copy);
    await db.database.pool.query(`${copy} LIMIT 720000`);
    const [[row]] = (await db.database.pool.query({ sql: "SELECT COUNT(*) FROM video_tort_rule_property", rowsAsArray: true })) as unknown as [[[number]]];
    expect(Number(row![0])).toBe(20 * 180_000);

    nc.publish(config.TORT_RULES_CHANGED_SUBJECT, JSON.stringify({ full: true }));
    await eventually(async () => metricValue(await (await ops("metrics")).text(), 'tortmatch_rule_loads_total{kind="full",result="over_budget"}') >= 1, "the reload abandoned", 120_000, 500);
    expect(service.log()).toMatch(/"level":50.*the rule snapshot would exceed its memory budget.*TORT_SNAPSHOT_MAX_MB/);
    expect(service.child.exitCode).toBeNull(); // no crash
    const status = (await (await ops("status.json")).json()) as { ready: boolean; snapshot: { version: string } };
    expect(status).toMatchObject({ ready: true, snapshot: { version: before } });

    // The old snapshot serves the next results.
    const [seq] = await publishInputs(nc, config, resultLines(1, 0, DATASET));
    const verdict = await eventually(async () => (await readVerdicts(nc, config)).find((v) => v.verdict.source.seq === seq), "a verdict with the old rules", 30_000);
    expect(verdict!.verdict.rulesVersion).toBe(before);
    const { peakMb } = memoryOf(service.child.pid!);
    console.log(`memory budget: 3.6M property rows, TORT_SNAPSHOT_MAX_MB=96 under --max-old-space-size=192: reload abandoned, old snapshot ${before} served; peak RSS ${peakMb.toFixed(0)} MB`);
    expect(service.child.exitCode).toBeNull();
  });
});
