import { Kvm } from "@nats-io/kv";
import { afterAll, describe, expect, it } from "vitest";
import { runCli } from "../support/cli.js";
import { connectTest, uniqueNames } from "../support/nats.js";

const names = uniqueNames();
const env = { NATS_URL: names.NATS_URL!, TORT_CONFIG_BUCKET: names.TORT_CONFIG_BUCKET!, TORT_RULES_CHANGED_SUBJECT: names.TORT_RULES_CHANGED_SUBJECT! };

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
    expect(bad.stderr).toContain("concurrency \"9999\" is not an integer in 1..4096");
    const unknown = await runCli(["config", "set", "colour", "1"], env);
    expect(unknown.stderr).toContain("unknown key \"colour\"");
    const get = await runCli(["config", "get"], env);
    expect(get.stdout).toContain("concurrency = 128");
    expect(get.stdout).toContain("refresh_interval_ms = (unset: environment default)");
  });

  it("rules refresh publishes the change notice", async () => {
    const nc = await connectTest();
    const sub = nc.subscribe(env.TORT_RULES_CHANGED_SUBJECT, { max: 1 });
    const got = (async () => {
      for await (const _ of sub) return true;
      return false;
    })();
    await nc.flush();
    const run = await runCli(["rules", "refresh"], env);
    expect(run.code, run.stderr).toBe(0);
    expect(await got).toBe(true);
    await nc.drain();
  });
});
