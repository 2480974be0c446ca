/**
 * Outages. MySQL stopped during a refresh: the old snapshot keeps serving,
 * its staleness shows in /metrics, recovery is automatic. The NATS server
 * restarted mid-run: the service reconnects and resumes without a restart of
 * its own, and nothing is lost.
 */
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, describe, expect, it } from "vitest";
import { decodeResultText } from "../src/ingest/decode-result.js";
import { spawnService, type SpawnedService } from "../test/support/cli.js";
import type { TestDatabase } from "../test/support/database.js";
import { accountFor, consumerState, eventually, publishInputs, readStream, removeTopology, testConfig, uniqueNames } from "../test/support/nats.js";
import { freePort, natsServer } from "../test/support/nats-server.js";
import { metricValue } from "../test/support/metrics.js";
import { resultLines, seededDatabase } from "../test/support/service.js";
import { createTcpProxy } from "../test/support/tcp-proxy.js";

const cleanups: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});


describe("outages", () => {
  it("MySQL stopped during a refresh: the old snapshot serves, staleness shows in /metrics, recovery is automatic", async () => {
    const db: TestDatabase = await seededDatabase();
    const proxy = await createTcpProxy(Number(new URL(db.url).port || 3306));
    await proxy.up();
    const url = new URL(db.url);
    url.port = String(proxy.port);
    const opsPort = await freePort();
    const env = { ...uniqueNames(), DATABASE_URL: url.toString(), LOG_LEVEL: "warn", TORT_OPS_PORT: String(opsPort), TORT_REFRESH_INTERVAL_MS: "1000", TORT_RETRY_BASE_MS: "200", TORT_RETRY_MAX_MS: "1000" };
    const config = testConfig(url.toString(), env);
    const nc = await connect({ servers: config.NATS_URL });
    const service = spawnService(env);
    cleanups.push(async () => {
      service.child.kill("SIGKILL");
      await proxy.down();
      await removeTopology(nc, config);
      await nc.drain();
      await db.drop();
    });
    const metrics = async () => (await fetch(`http://127.0.0.1:${opsPort}/metrics`)).text();
    await eventually(async () => metricValue(await metrics(), 'tortmatch_rule_cache_state{state="ready"}') === 1, "ready", 60_000);
    const version = ((await (await fetch(`http://127.0.0.1:${opsPort}/status.json`)).json()) as { snapshot: { version: string } }).snapshot.version;

    await proxy.down(); // MySQL gone: the next timer refresh fails
    await eventually(async () => metricValue(await metrics(), 'tortmatch_rule_loads_total{kind="incremental",result="error"}') >= 2, "failed refreshes", 30_000);
    await new Promise((r) => setTimeout(r, 2_500));
    const stale = await metrics();
    const ageDuringOutage = metricValue(stale, "tortmatch_snapshot_age_seconds");
    expect(ageDuringOutage).toBeGreaterThanOrEqual(2);
    // Still serving, with the old snapshot.
    const lines = resultLines(300);
    await publishInputs(nc, config, lines);
    await eventually(async () => (await consumerState(nc, config)).pending === 0 && (await consumerState(nc, config)).ackPending === 0, "served during the outage");
    const versions = new Set((await readStream(nc, config.TORT_VERDICT_STREAM)).map((m) => m.json<{ rulesVersion: string }>().rulesVersion));
    expect(versions).toEqual(new Set([version]));

    await proxy.up();
    await eventually(async () => metricValue(await metrics(), "tortmatch_snapshot_age_seconds") < 1.5, "fresh again", 30_000);
    const after = await metrics();
    console.log(
      `outage (MySQL): failed refreshes ${metricValue(after, 'tortmatch_rule_loads_total{kind="incremental",result="error"}')}, snapshot age ${ageDuringOutage.toFixed(1)} s during the outage → ${metricValue(after, "tortmatch_snapshot_age_seconds").toFixed(1)} s after; ${lines.length} results served meanwhile with the old snapshot`,
    );
    service.child.kill("SIGTERM");
    expect(await service.exited).toBe(0);
  });

  it("the NATS server restarted mid-run: the service reconnects and resumes by itself; nothing lost", async () => {
    const port = await freePort();
    const server = natsServer({ port, name: "restarted" });
    await server.start();
    const db = await seededDatabase();
    const env = { ...uniqueNames(), NATS_URL: server.url, DATABASE_URL: db.url, LOG_LEVEL: "info", TORT_OPS_PORT: "0", TORT_ACK_WAIT_MS: "3000", TORT_PUBLISH_TIMEOUT_MS: "1500", TORT_DUPLICATE_WINDOW_MS: "120000" };
    const config = testConfig(db.url, env);
    const nc: NatsConnection = await connect({ servers: server.url, maxReconnectAttempts: -1 });
    const service: SpawnedService = spawnService(env);
    cleanups.push(async () => {
      service.child.kill("SIGKILL");
      await nc.close();
      await server.stop();
      await db.drop();
    });
    const lines = resultLines(20_000, 0.005);
    const seqs = await publishInputs(nc, config, lines);
    const outputs = async () => {
      const jsm = await (await import("@nats-io/jetstream")).jetstreamManager(nc);
      const v = (await jsm.streams.info(config.TORT_VERDICT_STREAM).catch(() => null))?.state.messages ?? 0;
      const d = (await jsm.streams.info(config.TORT_DEADLETTER_STREAM).catch(() => null))?.state.messages ?? 0;
      return v + d;
    };
    await eventually(async () => (await outputs()) >= 4_000, "processing under way", 60_000);
    await server.stop();
    await new Promise((r) => setTimeout(r, 2_000));
    await server.start();
    const restartedAt = Date.now();
    await eventually(async () => (await outputs()) >= lines.length, "everything processed after the restart", 180_000, 250);
    const resumedIn = (Date.now() - restartedAt) / 1000;
    expect(service.child.exitCode).toBeNull(); // the service did not restart
    const verdictSeqs = (await readStream(nc, config.TORT_VERDICT_STREAM)).map((m) => m.json<{ source: { seq: number } }>().source.seq);
    const deadSeqs = (await readStream(nc, config.TORT_DEADLETTER_STREAM)).map((m) => Number(m.headers!.get("Tort-Source-Seq")));
    const { lost, duplicated, strays } = accountFor(seqs.map((seq, i) => ({ seq, valid: decodeResultText(lines[i]!).ok })), verdictSeqs, deadSeqs);
    const reconnects = (service.log().match(/NATS reconnected/g) ?? []).length;
    expect(service.log()).toContain("NATS disconnected");
    expect(reconnects).toBeGreaterThanOrEqual(1);
    console.log(`outage (NATS restart): ${lines.length} inputs, server down 2 s mid-run, all processed ${resumedIn.toFixed(1)} s after it came back; lost = ${lost.length}, duplicated = ${duplicated.length}; service process never restarted (logged: disconnected, then reconnected ×${reconnects})`);
    expect(lost).toEqual([]);
    expect(duplicated).toEqual([]);
    expect(strays).toEqual([]);
    service.child.kill("SIGTERM");
    expect(await service.exited).toBe(0);
  });
});
