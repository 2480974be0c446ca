/**
 * Memory pressure slows the service instead of stopping it (spec section 13): under
 * --max-old-space-size=192, a burst of 2,000 results of about 900 KB each queued before start,
 * `concurrency: auto` with a maximum of 1024. No crash, every result settled (sets of source
 * sequences), the heap's peak below its limit; and where the byte budget does not already hold the
 * burst back (TORT_MAX_INFLIGHT_BYTES 1 GiB), the limit seen shrinking under pressure in the metrics.
 */
import { connect } from "@nats-io/transport-node";
import { afterAll, describe, expect, it } from "vitest";
import { decodeResultText } from "../src/ingest/decode-result.js";
import { generateProperties, generateRules } from "../src/seed/generate-dataset.js";
import { writeRules } from "../src/seed/write-rules.js";
import { spawnService, type SpawnedService } from "../test/support/cli.js";
import { createTestDatabase, type TestDatabase } from "../test/support/database.js";
import { metricValue } from "../test/support/metrics.js";
import { freePort } from "../test/support/nats-server.js";
import { accountFor, eventually, publishInputs, readStream, removeTopology, testConfig, uniqueNames } from "../test/support/nats.js";
import { memoryOf } from "../test/support/process-memory.js";
import { resultLines, SMALL_DATASET } from "../test/support/service.js";

const RESULTS = 2_000;
const TARGET_BYTES = 900 * 1024;
const cleanups: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

/**
 * A valid result of about TARGET_BYTES: a seeded result's matches repeated (shifted) 500 times, and
 * the rest an unknown field (ignored by matching, yet held on the heap while the result is in
 * flight): quick to match, heavy to hold — a burst of these lets a limit grow while the heap fills.
 */
function largeResult(line: string, i: number): string {
  const base = JSON.parse(line) as { matches: { assetId: number; startMs: number; endMs: number; score: number }[] };
  const seed = base.matches.length > 0 ? base.matches : [{ assetId: 1, startMs: 0, endMs: 1000, score: 0.5 }];
  const matches = Array.from({ length: 500 }, (_, k) => {
    const m = seed[k % seed.length]!;
    return { assetId: m.assetId, startMs: m.startMs + k, endMs: m.endMs + k, score: ((k * 7919 + i) % 1_000_003) / 1_000_003 };
  });
  const body = JSON.stringify({ ...base, matches, padding: "" });
  return body.replace('"padding":""', `"padding":"${"f".repeat(Math.max(0, TARGET_BYTES + 1024 - body.length))}"`);
}

describe("adaptive concurrency under memory pressure", () => {
  // With the default byte budget (64 MiB) the budget alone keeps the held bytes low: no pressure
  // shows, and the limit has nothing to shrink for. With a budget of 1 GiB only the adaptive limit
  // stands between the burst and the heap: it must shrink under pressure.
  it.each([
    ["the default byte budget (64 MiB)", "67108864", false],
    ["a byte budget of 1 GiB", "1073741824", true],
  ])("2,000 results of ~900 KB under --max-old-space-size=192, auto up to 1024, %s: no crash, all settled, heap below its limit", async (_name, maxBytes, mustShrink) => {
    const db: TestDatabase = await createTestDatabase();
    cleanups.push(() => db.drop());
    await writeRules(db.database, generateRules(SMALL_DATASET), generateProperties(SMALL_DATASET));
    const opsPort = await freePort();
    const env = { ...uniqueNames(), DATABASE_URL: db.url, LOG_LEVEL: "info", TORT_OPS_PORT: String(opsPort), TORT_CONCURRENCY: "auto", TORT_CONCURRENCY_MAX: "1024", TORT_MAX_INFLIGHT_BYTES: maxBytes, TORT_REFRESH_INTERVAL_MS: "0" };
    const config = testConfig(db.url, env);
    const nc = await connect({ servers: config.NATS_URL });
    cleanups.push(async () => {
      await removeTopology(nc, config);
      await nc.drain();
    });

    // Valid lines only (the generator's share of broken ones is 0 here), each made ~900 KB, 100 at a time.
    const small = resultLines(RESULTS, 0);
    const seqs: number[] = [];
    for (let i = 0; i < small.length; i += 100) {
      const lines = small.slice(i, i + 100).map((l, k) => largeResult(l, i + k));
      for (const l of lines) {
        expect(decodeResultText(l).ok).toBe(true);
        expect(Buffer.byteLength(l)).toBeGreaterThanOrEqual(TARGET_BYTES);
        expect(Buffer.byteLength(l)).toBeLessThan(1024 * 1024 - 4096);
      }
      seqs.push(...(await publishInputs(nc, config, lines)));
    }

    const service: SpawnedService = spawnService(env, ["--max-old-space-size=192"]);
    cleanups.push(async () => {
      service.child.kill("SIGTERM");
      await service.exited;
    });
    const samples: { limit: number; pressure: number; heapUsed: number; heapLimit: number }[] = [];
    let settled = 0;
    const metrics = async () => {
      const text = await (await fetch(`http://127.0.0.1:${opsPort}/metrics`)).text();
      samples.push({
        limit: metricValue(text, "tortmatch_concurrency_limit"),
        pressure: metricValue(text, "tortmatch_concurrency_pressure"),
        heapUsed: metricValue(text, "tortmatch_nodejs_heap_size_used_bytes"),
        heapLimit: metricValue(text, "tortmatch_heap_limit_bytes"),
      });
      settled = ["verdict", "duplicate-verdict", "dead-letter"].reduce((sum, o) => sum + metricValue(text, `tortmatch_messages_total{outcome="${o}"}`), 0);
    };
    await eventually(() => metrics().then(() => true), "the ops server", 60_000, 200);
    await eventually(async () => {
      if (service.child.exitCode !== null) return true; // a crash ends the wait, and fails below
      await metrics();
      return settled >= RESULTS;
    }, "every result settled", 480_000, 100);
    expect(service.child.exitCode, `the service exited: ${service.log().slice(-2_000)}`).toBeNull();

    const verdictSeqs = (await readStream(nc, config.TORT_VERDICT_STREAM)).map((m) => m.json<{ source: { seq: number } }>().source.seq);
    const deadSeqs = (await readStream(nc, config.TORT_DEADLETTER_STREAM).catch(() => [])).map((m) => Number(m.headers!.get("Tort-Source-Seq")));
    expect(accountFor(seqs.map((seq) => ({ seq, valid: true })), verdictSeqs, deadSeqs)).toEqual({ lost: [], duplicated: [], strays: [] });

    const heapLimit = samples.find((s) => s.heapLimit > 0)!.heapLimit;
    const peakHeap = Math.max(...samples.map((s) => s.heapUsed).filter(Number.isFinite));
    expect(peakHeap).toBeLessThan(heapLimit);
    // The limit shrinking: after it first rose above its minimum (the probe at start), a sample below an earlier one.
    const rose = samples.findIndex((s) => s.limit > 4);
    const shrank = rose >= 0 && samples.slice(rose).some((s, i, after) => i > 0 && s.limit < Math.max(...after.slice(0, i).map((x) => x.limit)));
    const underPressure = samples.some((s, i) => i > 0 && s.pressure > 0 && s.limit < samples[i - 1]!.limit);
    const mostLimit = Math.max(...samples.map((s) => s.limit));
    const timeline = samples.map((s) => s.limit).filter((l, i, all) => i === 0 || l !== all[i - 1]);
    const { peakMb } = memoryOf(service.child.pid!);
    console.log(
      `adaptive memory: ${RESULTS} results of ~${Math.round(TARGET_BYTES / 1024)} KB, --max-old-space-size=192, auto up to 1024, TORT_MAX_INFLIGHT_BYTES=${maxBytes}: all settled; heap peak ${(peakHeap / 2 ** 20).toFixed(0)} MB of a ${(heapLimit / 2 ** 20).toFixed(0)} MB limit (sampled every 100 ms); limit between ${Math.min(...samples.map((s) => s.limit))} and ${mostLimit}; most pressure ${Math.max(...samples.map((s) => s.pressure)).toFixed(2)}${underPressure ? " (the limit cut under it)" : ""}; peak RSS ${peakMb.toFixed(0)} MB; the limit's values in turn: ${timeline.slice(0, 40).join(" ")}${timeline.length > 40 ? " …" : ""}`,
    );
    if (mustShrink) expect(shrank).toBe(true);
  });
});
