import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { spawn, type ChildProcess } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Config } from "../../src/config.js";
import { CLI_ARGS } from "../support/cli.js";
import type { TestDatabase } from "../support/database.js";
import { connectTest, consumerState, eventually, publishInputs, readVerdicts, removeTopology, testConfig, uniqueNames } from "../support/nats.js";
import { resultLines, seededDatabase } from "../support/service.js";

let db: TestDatabase;
let nc: NatsConnection;
let config: Config;
let env: Record<string, string>;

beforeAll(async () => {
  db = await seededDatabase();
  nc = await connectTest();
  env = { ...uniqueNames(), DATABASE_URL: db.url, LOG_LEVEL: "info", TORT_OPS_PORT: "0", TORT_CONCURRENCY: "16", TORT_SHUTDOWN_TIMEOUT_MS: "15000" };
  config = testConfig(db.url, env);
});
afterAll(async () => {
  await removeTopology(nc, config).catch(() => {});
  await nc?.drain();
  await db?.drop();
});

const runService = () => runServiceWith(env);

function runServiceWith(vars: Record<string, string>): { child: ChildProcess; exited: Promise<number | null>; log: () => string } {
  const child = spawn(process.execPath, [...CLI_ARGS, "run"], { env: { ...process.env, ...vars }, stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  child.stderr!.on("data", (d) => (log += d));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return { child, exited, log: () => log };
}

const verdictCount = async () => (await (await jetstreamManager(nc)).streams.info(config.TORT_VERDICT_STREAM)).state.messages;

describe("graceful shutdown", () => {
  it("SIGTERM under load: a clean exit, and a restart finishes the rest with no duplicates", async () => {
    const lines = resultLines(6_000);
    await publishInputs(nc, config, lines);

    const first = runService();
    await eventually(async () => (await verdictCount().catch(() => 0)) >= 500, "processing under way", 30_000);
    const signalledAt = Date.now();
    first.child.kill("SIGTERM");
    const code = await first.exited;
    expect(code, first.log()).toBe(0);
    expect(Date.now() - signalledAt).toBeLessThan(15_000);
    expect(first.log()).toContain("tortmatch stopped");
    const afterFirst = await verdictCount();
    expect(afterFirst).toBeLessThan(lines.length); // it really stopped part-way
    // Everything it pulled, it settled: nothing left awaiting ack.
    expect((await consumerState(nc, config)).ackPending).toBe(0);

    const second = runService();
    await eventually(async () => (await consumerState(nc, config)).pending === 0 && (await verdictCount()) === lines.length, "the rest processed", 60_000);
    second.child.kill("SIGTERM");
    expect(await second.exited).toBe(0);

    const verdicts = await readVerdicts(nc, config);
    expect(verdicts).toHaveLength(lines.length);
    expect(new Set(verdicts.map((v) => v.verdict.source.seq)).size).toBe(lines.length);
  });
});

describe("start-up failure", () => {
  it("an ops port already taken: a clear error and exit 1, not a service nobody can watch", async () => {
    const { createServer } = await import("node:net");
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, "127.0.0.1", () => r()));
    const port = (blocker.address() as { port: number }).port;
    try {
      const service = runServiceWith({ ...env, ...uniqueNames(), TORT_OPS_PORT: String(port) });
      expect(await service.exited).toBe(1);
      expect(service.log()).toContain(`tortmatch: the ops server cannot listen on 127.0.0.1:${port}`);
    } finally {
      blocker.close();
    }
  });
});
