/**
 * Clustered NATS: three nats-servers on loopback (routes), streams with 3
 * replicas. One server is stopped mid-run: processing continues, nothing lost.
 */
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { writeFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Config } from "../src/config.js";
import { decodeResultText } from "../src/ingest/decode-result.js";
import { spawnService, type SpawnedService } from "../test/support/cli.js";
import type { TestDatabase } from "../test/support/database.js";
import { accountFor, eventually, readStream, testConfig, uniqueNames } from "../test/support/nats.js";
import { freePort, natsServer, type NatsServer } from "../test/support/nats-server.js";
import { resultLines, seededDatabase } from "../test/support/service.js";

const RESULTS = Number(process.env.CLUSTER_RESULTS ?? 20_000);
const servers: NatsServer[] = [];
let db: TestDatabase;
let nc: NatsConnection;
let config: Config;
let env: Record<string, string>;
let service: SpawnedService | undefined;

beforeAll(async () => {
  const ports = [await freePort(), await freePort(), await freePort()];
  const routes = [await freePort(), await freePort(), await freePort()];
  for (let k = 0; k < 3; k++) servers.push(natsServer({ port: ports[k]!, name: `n${k + 1}`, cluster: { port: routes[k]!, routes: routes.filter((_, j) => j !== k) } }));
  await Promise.all(servers.map((s) => s.start()));
  db = await seededDatabase();
  env = { ...uniqueNames(), NATS_URL: servers.map((s) => s.url).join(","), DATABASE_URL: db.url, LOG_LEVEL: "info", TORT_OPS_PORT: "0", TORT_STREAM_REPLICAS: "3", TORT_ACK_WAIT_MS: "3000", TORT_PUBLISH_TIMEOUT_MS: "1500", TORT_DUPLICATE_WINDOW_MS: "120000" };
  config = testConfig(db.url, env);
  nc = await connect({ servers: servers.map((s) => s.url), maxReconnectAttempts: -1 });
  // The cluster elects a JetStream meta leader before streams can be made.
  await eventually(async () => {
    const jsm = await jetstreamManager(nc, { timeout: 2_000 });
    await jsm.streams.add({ name: config.TORT_INPUT_STREAM, subjects: [config.TORT_INPUT_SUBJECTS], num_replicas: 3 });
    return true;
  }, "JetStream cluster ready", 60_000, 500);
}, 120_000);
afterAll(async () => {
  service?.child.kill("SIGKILL");
  await nc?.close();
  await Promise.all(servers.map((s) => s.stop()));
  await db?.drop();
});

describe("clustered NATS", () => {
  it("3 servers, R3 streams: one server stopped mid-run, processing continues, nothing lost", async () => {
    const lines = resultLines(RESULTS, 0.005);
    const js = jetstream(nc);
    const enc = new TextEncoder();
    const seqs: number[] = [];
    for (let i = 0; i < lines.length; i += 500) {
      const acks = await Promise.all(lines.slice(i, i + 500).map((l) => js.publish(config.TORT_INPUT_SUBJECTS.replace(">", "x"), enc.encode(l))));
      seqs.push(...acks.map((a) => a.seq));
    }
    service = spawnService(env);
    const jsm = await jetstreamManager(nc);
    const outputs = async () => {
      const v = (await jsm.streams.info(config.TORT_VERDICT_STREAM).catch(() => null))?.state.messages ?? 0;
      const d = (await jsm.streams.info(config.TORT_DEADLETTER_STREAM).catch(() => null))?.state.messages ?? 0;
      return v + d;
    };
    await eventually(async () => (await outputs()) >= RESULTS / 4, "processing under way", 120_000, 200);
    const info = (await eventually(() => jsm.streams.info(config.TORT_VERDICT_STREAM), "verdict stream info", 30_000, 500))!;
    expect(info.config.num_replicas).toBe(3);
    // Stop the server leading the verdict stream: the hardest one to lose.
    const leader = info.cluster?.leader;
    const victim = servers.find((s) => s.name === leader) ?? servers[0]!;
    const stoppedAt = await outputs();
    await victim.stop();
    try {
      await eventually(async () => (await outputs()) >= RESULTS, "everything processed with one server down", 120_000, 500);
    } finally {
      writeFileSync("artifacts/cluster-service.log", service.log());
    }
    expect(service.child.exitCode).toBeNull();

    // Reading back may meet a leader election on the surviving two: retry it.
    const verdictSeqs = (await eventually(() => readStream(nc, config.TORT_VERDICT_STREAM), "verdicts read back", 60_000, 1_000))!.map((m) => m.json<{ source: { seq: number } }>().source.seq);
    const deadSeqs = (await eventually(() => readStream(nc, config.TORT_DEADLETTER_STREAM), "dead letters read back", 60_000, 1_000))!.map((m) => Number(m.headers!.get("Tort-Source-Seq")));
    const { lost, duplicated, strays } = accountFor(seqs.map((seq, i) => ({ seq, valid: decodeResultText(lines[i]!).ok })), verdictSeqs, deadSeqs);
    const failedPublishes = (service.log().match(/verdict publish failed/g) ?? []).length;
    const reconnected = service.log().includes("NATS reconnected");
    console.log(`cluster: 3 servers, R3; stopped ${victim.name} (verdict stream leader${reconnected ? ", and the service's own server: it reconnected" : ""}) after ${stoppedAt} outputs; ${failedPublishes} publishes retried; ${verdictSeqs.length} verdicts + ${deadSeqs.length} dead letters for ${RESULTS} inputs; lost = ${lost.length}, duplicated = ${duplicated.length}`);
    expect(lost).toEqual([]);
    expect(duplicated).toEqual([]);
    expect(strays).toEqual([]);
  });
});
