import { jetstreamManager } from "@nats-io/jetstream";
import { spawn, type ChildProcess } from "node:child_process";
import { describe, expect, it } from "vitest";
import { CLI_ARGS } from "../support/cli.js";
import { consumerState, eventually, publishInputs, readVerdicts, uniqueNames } from "../support/nats.js";
import { resultLines, useServiceStack } from "../support/service.js";

const stack = useServiceStack({ LOG_LEVEL: "info", TORT_CONCURRENCY: "16", TORT_SHUTDOWN_TIMEOUT_MS: "15000" });

const runService = () => runServiceWith(stack.env);

function runServiceWith(vars: Record<string, string>): { child: ChildProcess; exited: Promise<number | null>; log: () => string } {
  const child = spawn(process.execPath, [...CLI_ARGS, "run"], { env: { ...process.env, ...vars }, stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  child.stderr!.on("data", (d) => (log += d));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return { child, exited, log: () => log };
}

const verdictCount = async () => (await (await jetstreamManager(stack.nc)).streams.info(stack.config.TORT_VERDICT_STREAM)).state.messages;

describe("graceful shutdown", () => {
  it("SIGTERM under load: a clean exit, and a restart finishes the rest with no duplicates", async () => {
    const { nc, config } = stack;
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
      const service = runServiceWith({ ...stack.env, ...uniqueNames(), TORT_OPS_PORT: String(port) });
      expect(await service.exited).toBe(1);
      expect(service.log()).toContain(`tortmatch: the ops server cannot listen on 127.0.0.1:${port}`);
    } finally {
      blocker.close();
    }
  });
});
