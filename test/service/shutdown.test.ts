import { jetstreamManager } from "@nats-io/jetstream";
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { describe, expect, it } from "vitest";
import { CLI_ARGS } from "../support/cli.js";
import { consumerState, eventually, publishInputs, readVerdicts, removeTopology, testConfig, uniqueNames } from "../support/nats.js";
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

/** A documented start command as the operator runs it, from the repository root; its stderr (and stdout) kept. */
function launch(command: string, args: string[], vars: Record<string, string>) {
  const root = new URL("../../", import.meta.url).pathname;
  const child = spawn(command, args, { cwd: root, env: { ...process.env, ...vars }, stdio: ["ignore", "pipe", "pipe"] });
  let log = "";
  child.stdout!.on("data", (d) => (log += d));
  child.stderr!.on("data", (d) => (log += d));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return { child, exited, log: () => log };
}

const serviceProcesses = () => {
  try {
    return execFileSync("pgrep", ["-f", "bin/tortmatch.js run"], { encoding: "utf8" }).trim().split("\n").filter(Boolean).map(Number);
  } catch {
    return []; // pgrep exits 1 when nothing matches
  }
};

describe("SIGTERM through every documented start command", () => {
  it.each([
    ["node bin/tortmatch.js run", process.execPath, ["bin/tortmatch.js", "run"]],
    ["npm start", "npm", ["start"]],
  ])("%s: the service stops gracefully and no process is left behind", async (_name, command, args) => {
    const names = uniqueNames();
    const before = serviceProcesses();
    const launched = launch(command, args, { ...stack.env, ...names });
    await eventually(() => launched.log().includes("tortmatch running"), "the service running", 60_000);
    const started = serviceProcesses().filter((pid) => !before.includes(pid));
    expect(started).toHaveLength(1);
    launched.child.kill("SIGTERM"); // the launcher, as a process manager would signal it
    expect(await launched.exited).toBe(0);
    await eventually(() => launched.log().includes("tortmatch stopped"), "the service's own graceful stop");
    await eventually(() => !serviceProcesses().includes(started[0]!), "no orphan left running");
    await removeTopology(stack.nc, testConfig(stack.db.url, names));
  });
});

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
  it("a topology the server refuses (input subjects overlap another stream): the reason and exit 1 within seconds", async () => {
    const names = uniqueNames();
    const jsm = await jetstreamManager(stack.nc);
    const squatter = `SQUAT_${names.TORT_CONSUMER}`;
    await jsm.streams.add({ name: squatter, subjects: [names.TORT_INPUT_SUBJECTS!] });
    try {
      const startedAt = Date.now();
      const service = runServiceWith({ ...stack.env, ...names });
      expect(await service.exited).toBe(1);
      expect(Date.now() - startedAt).toBeLessThan(15_000);
      expect(service.log()).toMatch(/tortmatch: .*subjects overlap/);
    } finally {
      await jsm.streams.delete(squatter);
      await removeTopology(stack.nc, testConfig(stack.db.url, names));
    }
  });

  it("an ops port already taken: a clear error and exit 1, not a service nobody can watch", async () => {
    const { createServer } = await import("node:net");
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, "127.0.0.1", () => r()));
    const port = (blocker.address() as { port: number }).port;
    const names = uniqueNames();
    try {
      const service = runServiceWith({ ...stack.env, ...names, TORT_OPS_PORT: String(port) });
      expect(await service.exited).toBe(1);
      expect(service.log()).toContain(`tortmatch: the ops server cannot listen on 127.0.0.1:${port}`);
    } finally {
      blocker.close();
      await removeTopology(stack.nc, testConfig(stack.db.url, names));
    }
  });
});
