import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningService } from "../../src/service.js";
import type { TestDatabase } from "../support/database.js";
import { connectTest, consumerState, eventually, publishInputs, readStream, readVerdicts, removeTopology, testConfig, uniqueNames } from "../support/nats.js";
import { resultLines, seededDatabase, startTestService } from "../support/service.js";
import { metricValue } from "../support/metrics.js";
import { createTcpProxy, type TcpProxy } from "../support/tcp-proxy.js";

let db: TestDatabase;
let nc: NatsConnection;
let proxy: TcpProxy;
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  db = await seededDatabase();
  nc = await connectTest();
  proxy = await createTcpProxy(Number(new URL(db.url).port || 3306));
});
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
  await proxy?.down();
  await nc?.drain();
  await db?.drop();
});

/** The test database, reached through the proxy. */
const proxiedUrl = () => {
  const u = new URL(db.url);
  u.port = String(proxy.port);
  return u.toString();
};
const settled = (s: RunningService) => s.stats.outcomes.verdict + s.stats.outcomes["dead-letter"];
const cacheOf = (s: RunningService) => s.actor.system.get("ruleCache").getSnapshot();

describe("outages", () => {
  it("an instance that cannot load rules hands its messages back: a healthy one on the same consumer does them all", async () => {
    await proxy.down();
    // One fleet: the broken instance starts first and leads; the healthy one waits for it at most 1 s, then reads the rules itself.
    const names = { ...uniqueNames(), TORT_WAIT_BUFFER: "64", TORT_ACK_WAIT_MS: "3000", TORT_PUBLISH_TIMEOUT_MS: "1500", TORT_DUPLICATE_WINDOW_MS: "60000", TORT_LEADER_WAIT_MS: "1000" };
    const broken = testConfig(proxiedUrl(), names);
    const lines = resultLines(600);
    await publishInputs(nc, broken, lines);
    const sick = await startTestService(broken, nc);
    cleanups.push(async () => {
      await sick.stop();
      await removeTopology(nc, broken);
    });
    await eventually(() => cacheOf(sick).context.attempt >= 1, "a failed first load");
    // Same names and consumer, the real database: the healthy instance.
    const healthy = await startTestService(testConfig(db.url, names), nc);
    cleanups.push(async () => void (await healthy.stop()));
    // Well within the 3 s ack wait of anything the sick one pulled: it has handed it back.
    await eventually(() => settled(healthy) === lines.length, "the healthy instance settled every message", 20_000);
    expect(settled(sick)).toBe(0);
    const verdicts = await readVerdicts(nc, broken);
    const dead = await readStream(nc, broken.TORT_DEADLETTER_STREAM);
    expect(new Set([...verdicts.map((v) => v.msgId), ...dead.map((d) => `${broken.TORT_INPUT_STREAM}:${d.headers?.get("Tort-Source-Seq")}`)]).size).toBe(lines.length);
    expect(verdicts.length + dead.length).toBe(lines.length);
  });

  it("database unreachable at start: nothing is acked or dead-lettered while it retries; all is processed once it is back", async () => {
    await proxy.down();
    const config = testConfig(proxiedUrl(), { TORT_WAIT_BUFFER: "32", TORT_CONCURRENCY: "64", TORT_ACK_WAIT_MS: "2000", TORT_PUBLISH_TIMEOUT_MS: "1500", TORT_DUPLICATE_WINDOW_MS: "60000", TORT_LAG_POLL_MS: "500" });
    const lines = resultLines(400);
    await publishInputs(nc, config, lines);
    const service = await startTestService(config, nc);
    cleanups.push(async () => {
      await service.stop();
      await removeTopology(nc, config);
    });

    await eventually(() => cacheOf(service).context.attempt >= 3, "three failed load attempts");
    // Well past the 2 s ack wait. After its first failed load the instance holds nothing: what
    // waited went back to JetStream (a healthy instance would take it), and nothing more is pulled.
    await new Promise((r) => setTimeout(r, 4_500));
    expect(String(cacheOf(service).value)).toMatch(/loading|retrying/);
    expect(cacheOf(service).context.lastError).toMatch(/ECONNREFUSED/);
    expect(service.stats.waiting).toBe(0);
    expect(service.limit.inUse).toBe(0);
    expect(settled(service)).toBe(0);
    expect((await readVerdicts(nc, config)).length).toBe(0);
    expect((await readStream(nc, config.TORT_DEADLETTER_STREAM)).length).toBe(0);
    const waitingState = await consumerState(nc, config);
    // Nothing acked; what it pulled it nak'ed (the server counts those as pending ack until redelivered).
    expect(waitingState.pending + waitingState.ackPending).toBe(lines.length);
    expect(service.stats.outcomes.retry).toBe(service.stats.received);
    // The lag, as /metrics shows it: everything still to do.
    const gauge = async (name: string) => metricValue(await service.metrics.registry.metrics(), name);
    await eventually(async () => (await gauge("tortmatch_consumer_pending_messages")) + (await gauge("tortmatch_consumer_ack_pending_messages")) === lines.length, "the lag in /metrics");

    await proxy.up();
    await eventually(() => settled(service) === lines.length, "everything processed", 60_000);
    expect(cacheOf(service).context.loads).toBeGreaterThan(1);
    const verdicts = await readVerdicts(nc, config);
    expect(new Set(verdicts.map((v) => v.msgId)).size).toBe(lines.length);
    await eventually(async () => (await consumerState(nc, config)).ackPending === 0, "nothing awaiting ack");
    await eventually(async () => (await gauge("tortmatch_consumer_pending_messages")) === 0 && (await gauge("tortmatch_consumer_ack_pending_messages")) === 0, "no lag left in /metrics");
  });

  it("a rule change and its notice give later results the new verdict; a failed refresh keeps serving the old snapshot", async () => {
    await proxy.up();
    const config = testConfig(proxiedUrl());
    const service = await startTestService(config, nc);
    cleanups.push(async () => {
      await proxy.up();
      await service.stop();
      await removeTopology(nc, config);
    });
    await eventually(() => service.snapshot$.value, "first snapshot");
    const first = service.snapshot$.value!;

    // A result that one rule alone claims: block it by raising that rule's priority and action.
    const lines = resultLines(300);
    const [seq] = await publishInputs(nc, config, lines);
    await eventually(() => settled(service) === lines.length, "first batch");
    const hitBy = (await readVerdicts(nc, config)).find((v) => v.verdict.action !== "pass" && v.verdict.action !== "block")!;
    const line = lines[hitBy.verdict.source.seq - seq!]!;
    const ruleId = hitBy.verdict.ruleId as number;
    await db.database.pool.query("UPDATE video_tort_rule SET action = 'block', priority = 1000 WHERE id = ?", [ruleId]);
    nc.publish(config.TORT_RULES_CHANGED_SUBJECT);
    await eventually(() => service.snapshot$.value !== first, "refreshed snapshot");
    expect(service.snapshot$.value!.loadKind).toBe("incremental");
    const secondVersion = service.snapshot$.value!.version;

    const [seq2] = await publishInputs(nc, config, [line]);
    await eventually(() => settled(service) === lines.length + 1, "changed rule applied");
    const after = (await readVerdicts(nc, config)).find((v) => v.verdict.source.seq === seq2)!;
    expect(after.verdict).toMatchObject({ action: "block", ruleId, rulesVersion: secondVersion });

    // The database goes away; a notice triggers a refresh that fails; the old snapshot keeps serving.
    await proxy.down();
    await db.database.pool.query("UPDATE video_tort_rule SET action = 'claim', priority = 0 WHERE id = ?", [ruleId]);
    nc.publish(config.TORT_RULES_CHANGED_SUBJECT);
    await eventually(() => cacheOf(service).context.attempt >= 1, "failed refresh");
    expect(cacheOf(service).context.snapshot?.version).toBe(secondVersion);
    const [seq3] = await publishInputs(nc, config, [line]);
    await eventually(() => settled(service) === lines.length + 2, "served during the outage");
    const during = (await readVerdicts(nc, config)).find((v) => v.verdict.source.seq === seq3)!;
    expect(during.verdict).toMatchObject({ action: "block", ruleId, rulesVersion: secondVersion });

    // Back: the retry refreshes by itself.
    await proxy.up();
    await eventually(() => service.snapshot$.value!.version !== secondVersion, "recovered refresh", 30_000);
    expect(cacheOf(service).context.attempt).toBe(0);

    // The rule deleted outright (no mtime moves) and a notice: the next result no longer hits it.
    await db.database.pool.query("UPDATE video_tort_rule SET action = 'block', priority = 1000 WHERE id = ?", [ruleId]);
    nc.publish(config.TORT_RULES_CHANGED_SUBJECT);
    await eventually(() => service.snapshot$.value!.rules.some((r) => r.id === ruleId && r.priority === 1000), "the rule blocking again");
    const beforeDelete = service.snapshot$.value!;
    await db.database.pool.query("DELETE FROM video_tort_rule WHERE id = ?", [ruleId]);
    nc.publish(config.TORT_RULES_CHANGED_SUBJECT);
    await eventually(() => service.snapshot$.value !== beforeDelete, "the refresh after the hard delete", 10_000);
    expect(service.snapshot$.value!.loadKind).toBe("full");
    const [seq4] = await publishInputs(nc, config, [line]);
    await eventually(() => settled(service) === lines.length + 3, "served after the delete");
    const deleted = (await readVerdicts(nc, config)).find((v) => v.verdict.source.seq === seq4)!;
    expect(deleted.verdict.ruleId).not.toBe(ruleId);
  });
});
