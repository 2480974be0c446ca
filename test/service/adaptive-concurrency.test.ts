/**
 * Adaptive concurrency live (spec section 13), on the real servers: `auto` from the environment,
 * then KV switches under load — a number turns it off, `auto` back on, bounds move — and every
 * result comes out once: accounted for by sets of source sequences, never by counts.
 */
import { Kvm } from "@nats-io/kv";
import { describe, expect, it } from "vitest";
import { decodeResultText } from "../../src/ingest/decode-result.js";
import { runCli } from "../support/cli.js";
import { accountFor, eventually, publishInputs, readStream, testConfig } from "../support/nats.js";
import { resultLines, useServiceHarness } from "../support/service.js";

const h = useServiceHarness();

describe("adaptive concurrency", () => {
  it("switches between auto and a number under load, keeps auto within its bounds, and loses or duplicates nothing", async () => {
    const config = testConfig(h.db.url, { TORT_CONCURRENCY: "auto", TORT_CONCURRENCY_MIN: "2", TORT_CONCURRENCY_MAX: "200" });
    const service = await h.start(config);
    await eventually(() => service.snapshot$.value, "first snapshot");
    const kv = await new Kvm(h.nc).open(config.TORT_CONFIG_BUCKET);
    const inputs: { seq: number; valid: boolean }[] = [];
    const limits: { mode: string; limit: number; min: number; max: number }[] = [];
    const watch = setInterval(() => limits.push(service.concurrency.view()), 20);

    /** A burst published while `change` is written to KV, half-way through. */
    const burstWith = async (n: number, change: () => Promise<unknown>) => {
      const lines = resultLines(n, 0.02);
      const half = Math.floor(n / 2);
      const first = publishInputs(h.nc, config, lines.slice(0, half));
      await change();
      const seqs = [...(await first), ...(await publishInputs(h.nc, config, lines.slice(half)))];
      seqs.forEach((seq, i) => inputs.push({ seq, valid: decodeResultText(lines[i]!).ok }));
    };

    await burstWith(2_000, async () => {});
    await eventually(() => service.concurrency.view().minRttMs != null, "the first probe's minimum", 30_000);
    expect(service.concurrency.view()).toMatchObject({ mode: "auto", min: 2, max: 200 });

    await burstWith(2_000, () => kv.put("concurrency", "16"));
    await eventually(() => service.concurrency.view().mode === "fixed" && service.limit.limit === 16, "fixed at 16");

    await burstWith(2_000, () => kv.put("concurrency", "auto"));
    await eventually(() => service.concurrency.view().mode === "auto", "auto again");

    await burstWith(2_000, () => kv.put("concurrency_max", "8"));
    await eventually(() => service.concurrency.view().max === 8 && service.limit.limit <= 8, "max 8 in force");
    // Refused: a minimum above the maximum; the previous bounds stay.
    await kv.put("concurrency_min", "50");
    await new Promise((r) => setTimeout(r, 300));
    expect(service.concurrency.view()).toMatchObject({ min: 2, max: 8 });

    await burstWith(2_000, () => kv.put("concurrency", "200"));
    await eventually(() => service.limit.limit === 200, "fixed at 200");
    await burstWith(1_000, () => kv.put("concurrency", "auto"));

    await eventually(() => service.stats.settled === inputs.length, "every result settled", 120_000);
    clearInterval(watch);
    const verdictSeqs = (await readStream(h.nc, config.TORT_VERDICT_STREAM)).map((m) => m.json<{ source: { seq: number } }>().source.seq);
    const deadSeqs = (await readStream(h.nc, config.TORT_DEADLETTER_STREAM)).map((m) => Number(m.headers!.get("Tort-Source-Seq")));
    expect(accountFor(inputs, verdictSeqs, deadSeqs)).toEqual({ lost: [], duplicated: [], strays: [] });
    expect(inputs.some((i) => !i.valid)).toBe(true);

    // In auto the limit stayed within the bounds in force; both modes were seen.
    for (const seen of limits.filter((l) => l.mode === "auto")) {
      expect(seen.limit).toBeGreaterThanOrEqual(seen.min);
      expect(seen.limit).toBeLessThanOrEqual(seen.max);
    }
    expect(new Set(limits.map((l) => l.mode))).toEqual(new Set(["auto", "fixed"]));

    // Exported: the limit, the mode, the minimum and the sample.
    const text = await service.metrics.registry.metrics();
    expect(text).toMatch(/^tortmatch_concurrency_adaptive 1$/m);
    expect(text).toMatch(/^tortmatch_concurrency_min_rtt_seconds \d/m);
    expect(text).toMatch(/^tortmatch_concurrency_limit \d+$/m);
    expect(service.instanceStats()).toMatchObject({ mode: "auto" });

    // `tortmatch fleet` shows it: the limit marked auto, the minimum and the sample.
    const cliEnv = { TORT_SERVICE_NAME: config.TORT_SERVICE_NAME, TORT_CONSUMER: config.TORT_CONSUMER };
    const listed = await runCli(["fleet", "--json"], cliEnv);
    expect(JSON.parse(listed.stdout)).toEqual([expect.objectContaining({ mode: "auto", minRttMs: expect.any(Number), limit: expect.any(Number) })]);
    const table = await runCli(["fleet"], cliEnv);
    expect(table.stdout).toMatch(/LIMIT\s+MIN RTT MS\s+RTT MS/);
    expect(table.stdout).toMatch(/\d+ \(auto\)\s+\d+(\.\d+)?\s+\d+(\.\d+)?/);
  });
});
