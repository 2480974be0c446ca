import { Kvm } from "@nats-io/kv";
import { describe, expect, it } from "vitest";
import type { Config } from "../../src/config.js";
import { createRuleLoader } from "../../src/rules/load-rules.js";
import type { RunningService } from "../../src/service.js";
import { consumerState, eventually, publishInputs, readStream, readVerdicts, testConfig } from "../support/nats.js";
import { replayLines, resultLines, useServiceHarness } from "../support/service.js";

const h = useServiceHarness();
const start = (config: Config) => h.start(config);

const settledCount = (s: RunningService) => s.stats.settled;

describe("the live pipeline", () => {
  it("drains 5,000 results queued before start with one rule load, the replay's verdicts and no duplicates", async () => {
    const config = testConfig(h.db.url, { TORT_CONCURRENCY: "64" });
    const lines = resultLines(5_000, 0.01);
    const seqs = await publishInputs(h.nc, config, lines);

    const service = await start(config);
    await eventually(() => settledCount(service) === lines.length, "every message settled", 60_000);
    const cache = service.actor.system.get("ruleCache").getSnapshot();
    expect(cache.context.loads).toBe(1);

    // The reference: the replay of the same lines against the same rules.
    const reference = await createRuleLoader(h.db.database).loadFull();
    expect(reference.version).toBe(service.snapshot$.value!.version);
    const { replayed, invalidLines } = await replayLines(reference, lines);
    const validSeqs = seqs.filter((_, i) => !invalidLines.includes(i + 1));

    const verdicts = await readVerdicts(h.nc, config);
    expect(verdicts).toHaveLength(validSeqs.length);
    expect(new Set(verdicts.map((v) => v.msgId)).size).toBe(verdicts.length);
    const bySeq = new Map(verdicts.map((v) => [v.verdict.source.seq, v]));
    validSeqs.forEach((seq, k) => {
      const got = bySeq.get(seq)!;
      const { source: _s, decidedAt: _d, ...want } = replayed[k] as Record<string, unknown>;
      const { source, decidedAt: _d2, ...rest } = got.verdict;
      expect(rest).toEqual(want);
      expect(source).toEqual({ stream: config.TORT_INPUT_STREAM, seq });
      expect(got.msgId).toBe(`${config.TORT_INPUT_STREAM}:${seq}`);
      expect(got.subject).toBe(`${config.TORT_VERDICT_SUBJECT_PREFIX}.${rest.action}`);
    });
    expect(await readStream(h.nc, config.TORT_DEADLETTER_STREAM)).toHaveLength(invalidLines.length);
    expect(invalidLines.length).toBeGreaterThan(10);
    await eventually(async () => {
      const s = await consumerState(h.nc, config);
      return s.pending === 0 && s.ackPending === 0;
    }, "nothing pending and nothing awaiting ack");
    expect(service.stats.maxInFlight).toBeLessThanOrEqual(64);
  });

  it("dead-letters malformed inputs with their reasons and leaves the good ones around them alone", async () => {
    const config = testConfig(h.db.url);
    const [good1, good2] = resultLines(2);
    const bodies: (string | Uint8Array)[] = [
      good1!,
      "{aid: 1",
      new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]),
      "[]",
      JSON.stringify({ ...JSON.parse(good1!), durationMs: -5 }),
      good2!,
    ];
    const seqs = await publishInputs(h.nc, config, bodies);
    const service = await start(config);
    await eventually(() => settledCount(service) === bodies.length, "every message settled");

    const dead = await readStream(h.nc, config.TORT_DEADLETTER_STREAM);
    expect(dead.map((m) => Number(m.headers!.get("Tort-Source-Seq")))).toEqual([seqs[1], seqs[2], seqs[3], seqs[4]]);
    const reasons = dead.map((m) => m.headers!.get("Tort-Error"));
    expect(reasons[0]).toMatch(/^body: not JSON/);
    expect(reasons[1]).toBe("body: not valid UTF-8");
    expect(reasons[2]).toMatch(/^body: /);
    expect(reasons[3]).toMatch(/^durationMs: /);
    for (const [k, m] of dead.entries()) {
      expect(m.headers!.get("Tort-Source-Stream")).toBe(config.TORT_INPUT_STREAM);
      const original = bodies[k + 1]!;
      expect(Buffer.from(m.data)).toEqual(Buffer.from(typeof original === "string" ? new TextEncoder().encode(original) : original));
    }
    const verdicts = await readVerdicts(h.nc, config);
    expect(verdicts.map((v) => v.verdict.source.seq)).toEqual([seqs[0], seqs[5]]);
    const metrics = await service.metrics.registry.metrics();
    for (const [reason, n] of [["invalid_json", 1], ["invalid_utf8", 1], ["invalid_field", 2], ["too_large", 0], ["publish_refused", 0]] as const) {
      expect(metrics).toContain(`tortmatch_dead_letters_total{reason="${reason}"} ${n}`);
    }
    await eventually(async () => {
      const s = await consumerState(h.nc, config);
      return s.pending === 0 && s.ackPending === 0 && s.redelivered === 0;
    }, "all settled, nothing redelivered");
  });

  it("near-1 MiB results at the highest concurrency: message bytes held stay within TORT_MAX_INFLIGHT_BYTES", async () => {
    const maxBytes = 4 * 1024 * 1024;
    const config = testConfig(h.db.url, { TORT_CONCURRENCY: "4096", TORT_MAX_INFLIGHT_BYTES: String(maxBytes) });
    // Valid results padded with an unknown field to ~900 kB each.
    const bodies = resultLines(40).map((l) => `${l.slice(0, -1)},"pad":"${"x".repeat(900_000)}"}`);
    const seqs = await publishInputs(h.nc, config, bodies);
    const service = await start(config);
    let maxHeld = 0;
    let maxInFlight = 0;
    const sampler = setInterval(() => {
      maxHeld = Math.max(maxHeld, service.budget.inUse);
      maxInFlight = Math.max(maxInFlight, service.stats.inFlight);
    }, 2);
    try {
      await eventually(() => settledCount(service) === bodies.length, "every large result settled", 60_000);
    } finally {
      clearInterval(sampler);
    }
    // A message keeps its own size of the budget (~900 kB here): never more than 4 MiB of them at once.
    expect(maxHeld).toBeGreaterThan(0);
    expect(maxHeld).toBeLessThanOrEqual(maxBytes);
    expect(maxInFlight).toBeLessThanOrEqual(Math.floor(maxBytes / 900_000));
    expect((await readVerdicts(h.nc, config)).map((v) => v.verdict.source.seq).sort((a, b) => a - b)).toEqual(seqs);
    // Every reserve given back once the pulls end: the accounting balances.
    await service.stop();
    expect(service.budget.inUse).toBe(0);
    expect(service.limit.inUse).toBe(0);
  });

  it("follows the concurrency key of the KV bucket under load and ignores an invalid value", async () => {
    const config = testConfig(h.db.url, { TORT_CONCURRENCY: "4" });
    const service = await start(config);
    await eventually(() => service.snapshot$.value, "first snapshot");
    const kv = await new Kvm(h.nc).open(config.TORT_CONFIG_BUCKET);
    let published = 0;
    const burst = async (n: number) => {
      await publishInputs(h.nc, config, resultLines(n));
      published += n;
      await eventually(() => settledCount(service) === published, "burst settled", 60_000);
    };
    const phase = async (value: string, expectLimit: number) => {
      await kv.put("concurrency", value);
      await eventually(() => service.limit.limit === expectLimit, `limit ${expectLimit}`);
      // Pull requests issued under the old limit end within their expiry (1 s here).
      await new Promise((r) => setTimeout(r, 1_200));
      service.stats.resetMaxInFlight();
      await burst(3_000);
      return service.stats.resetMaxInFlight();
    };

    await burst(1_500);
    expect(service.stats.resetMaxInFlight()).toBeLessThanOrEqual(4);
    const raised = await phase("48", 48);
    expect(raised).toBeLessThanOrEqual(48);
    expect(raised).toBeGreaterThan(4);
    const lowered = await phase("2", 2);
    expect(lowered).toBeLessThanOrEqual(2);

    await kv.put("concurrency", "lots");
    await kv.put("concurrency", "0");
    await new Promise((r) => setTimeout(r, 300));
    expect(service.limit.limit).toBe(2);
    const verdicts = await readVerdicts(h.nc, config);
    expect(verdicts).toHaveLength(published);
    expect(new Set(verdicts.map((v) => v.msgId)).size).toBe(published);
  });
});
