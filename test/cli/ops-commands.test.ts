import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { Svcm } from "@nats-io/services";
import type { NatsConnection } from "@nats-io/transport-node";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { runCli } from "../support/cli.js";
import { connectTest, readStream, removeTopology, testConfig, uniqueNames } from "../support/nats.js";
import { resultLines } from "../support/service.js";

const names = uniqueNames();
const env = { NATS_URL: names.NATS_URL!, TORT_CONFIG_BUCKET: names.TORT_CONFIG_BUCKET!, TORT_RULES_CHANGED_SUBJECT: names.TORT_RULES_CHANGED_SUBJECT!, TORT_CONSUMER: names.TORT_CONSUMER! };

afterAll(async () => {
  const nc = await connectTest();
  await (await new Kvm(nc).open(env.TORT_CONFIG_BUCKET)).destroy().catch(() => {});
  await nc.drain();
});

describe("operator commands", () => {
  it("config set writes a checked value; config get shows it; a bad value is refused and nothing written", async () => {
    const set = await runCli(["config", "set", "concurrency", "128"], env);
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout).toMatch(/\.concurrency = 128 \(revision \d+\)/);
    const bad = await runCli(["config", "set", "concurrency", "9999"], env);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("concurrency \"9999\" is not auto or an integer in 1..4096");
    const unknown = await runCli(["config", "set", "colour", "1"], env);
    expect(unknown.stderr).toContain("unknown key \"colour\"");
    const auto = await runCli(["config", "set", "concurrency_max", "512"], env);
    expect(auto.code, auto.stderr).toBe(0);
    const get = await runCli(["config", "get"], env);
    expect(get.stdout).toContain("concurrency = 128");
    expect(get.stdout).toContain("concurrency_max = 512");
    expect(get.stdout).toContain("concurrency_min = (unset: environment default)");
    expect(get.stdout).toContain("refresh_interval_ms = (unset: environment default)");
    const unset = await runCli(["config", "unset", "concurrency"], env);
    expect(unset.code, unset.stderr).toBe(0);
    expect((await runCli(["config", "get"], env)).stdout).toContain("concurrency = (unset: environment default)");
  });

  it("config get creates nothing on a fresh deployment, and shows a value written by another tool that the service ignores as ignored", async () => {
    const fresh = { NATS_URL: names.NATS_URL!, TORT_CONFIG_BUCKET: `cfg_fresh_${Date.now()}` };
    const get = await runCli(["config", "get"], fresh);
    expect(get.code, get.stderr).toBe(0);
    expect(get.stdout).toContain("concurrency = (unset: environment default)");
    const nc = await connectTest();
    try {
      const jsm = await jetstreamManager(nc);
      await expect(jsm.streams.info(`KV_${fresh.TORT_CONFIG_BUCKET}`)).rejects.toThrow();
      // Another tool writes what the service refuses.
      const kv = await new Kvm(nc).create(env.TORT_CONFIG_BUCKET);
      await kv.put("concurrency", "abc");
      const shown = await runCli(["config", "get"], env);
      expect(shown.stdout).toContain('concurrency = (INVALID, ignored: concurrency "abc" is not auto or an integer in 1..4096; running instances keep the value they had');
      await kv.delete("concurrency");
    } finally {
      await nc.drain();
    }
  });

  it("publish feeds an NDJSON file to the input stream, each line one message, blank lines skipped", async () => {
    const all = uniqueNames();
    const config = testConfig("mysql://root@127.0.0.1:3306/test", all);
    const dir = mkdtempSync(join(tmpdir(), "tortmatch-publish-"));
    const lines = resultLines(700);
    writeFileSync(join(dir, "in.ndjson"), `${lines.slice(0, 400).join("\n")}\n\n${lines.slice(400).join("\n")}\n`);
    const run = await runCli(["publish", "--in", join(dir, "in.ndjson")], all);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain("published 700 results");
    const nc = await connectTest();
    const stored = await readStream(nc, config.TORT_INPUT_STREAM);
    expect(stored.map((m) => m.string())).toEqual(lines);
    await removeTopology(nc, config);
    await nc.drain();
  });

  it("teardown lists what it would delete and refuses without --yes; with it, deletes the streams and the bucket", async () => {
    const all = uniqueNames();
    const config = testConfig("mysql://root@127.0.0.1:3306/test", all);
    const nc = await connectTest();
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: config.TORT_INPUT_STREAM, subjects: [config.TORT_INPUT_SUBJECTS] });
    await jsm.streams.add({ name: config.TORT_VERDICT_STREAM, subjects: [`${config.TORT_VERDICT_SUBJECT_PREFIX}.>`] });
    await new Kvm(nc).create(config.TORT_CONFIG_BUCKET);
    const refused = await runCli(["teardown"], all);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(config.TORT_INPUT_STREAM);
    expect(refused.stderr).toContain("--yes");
    // The preview lists what exists, with its messages; not what does not.
    expect(refused.stderr).toContain(`stream ${config.TORT_INPUT_STREAM} (0 messages)`);
    expect(refused.stderr).not.toContain(config.TORT_DEADLETTER_STREAM);
    // While an instance is registered on the consumer: refused, even with --yes, unless --force.
    const instance = await registerInstance(nc, config.TORT_CONSUMER);
    const busy = await runCli(["teardown", "--yes"], all);
    expect(busy.code).toBe(1);
    expect(busy.stderr).toContain(`1 instance(s) are running on consumer ${config.TORT_CONSUMER}`);
    await instance.stop();
    expect((await jsm.streams.info(config.TORT_INPUT_STREAM)).config.name).toBe(config.TORT_INPUT_STREAM);
    const done = await runCli(["teardown", "--yes"], all);
    expect(done.code, done.stderr).toBe(0);
    expect(done.stdout).toContain(`deleted ${config.TORT_INPUT_STREAM}`);
    expect(done.stdout).toContain(`${config.TORT_DEADLETTER_STREAM}: not there`);
    const names: string[] = [];
    for await (const n of jsm.streams.names()) names.push(n);
    expect(names).not.toContain(config.TORT_INPUT_STREAM);
    expect(names).not.toContain(config.TORT_VERDICT_STREAM);
    expect(names).not.toContain(`KV_${config.TORT_CONFIG_BUCKET}`);
    await nc.drain();
  });

  it("rules refresh publishes the change notice, and says when no instance is running to act on it", async () => {
    const nc = await connectTest();
    const sub = nc.subscribe(env.TORT_RULES_CHANGED_SUBJECT, { max: 1 });
    const got = (async () => {
      for await (const _ of sub) return true;
      return false;
    })();
    await nc.flush();
    const alone = await runCli(["rules", "refresh"], env);
    expect(alone.code).toBe(1);
    expect(alone.stderr).toContain(`no instance is running on consumer ${env.TORT_CONSUMER}: nothing refreshed`);
    expect(await got).toBe(true);
    // With an instance registered on the consumer (the NATS service every instance registers).
    const instance = await registerInstance(nc, env.TORT_CONSUMER);
    const run = await runCli(["rules", "refresh"], env);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain("1 running instance(s) refresh now");
    const full = nc.subscribe(env.TORT_RULES_CHANGED_SUBJECT, { max: 1 });
    const body = (async () => {
      for await (const m of full) return m.string();
      return "";
    })();
    await nc.flush();
    expect((await runCli(["rules", "refresh", "--full"], env)).code).toBe(0);
    expect(JSON.parse(await body)).toEqual({ full: true });
    await instance.stop();
    await nc.drain();
  });
});

/** What discovery sees of a running instance: the NATS service registered on `consumer` (as `run` registers it). */
function registerInstance(nc: NatsConnection, consumer: string) {
  return new Svcm(nc).add({ name: "tortmatch", version: "0.0.0", metadata: { consumer, input_stream: "x" }, statsHandler: async () => ({}) });
}
