/**
 * Hostile input: property-based fuzzing (fast-check) of malformed and
 * adversarial results — wrong types, huge arrays, deep nesting, ~1 MiB
 * bodies, invalid UTF-8. Never a crash; each one dead-lettered with a reason;
 * memory bounded; the good messages between them unaffected.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { memoryOf } from "../test/support/process-memory.js";
import type { Config } from "../src/config.js";
import { decodeResult, MAX_RESULT_BYTES } from "../src/ingest/decode-result.js";
import { spawnService, type SpawnedService } from "../test/support/cli.js";
import type { TestDatabase } from "../test/support/database.js";
import { connectTest, consumerState, eventually, publishInputs, readStream, readVerdicts, removeTopology, testConfig, uniqueNames } from "../test/support/nats.js";
import { resultLines, seededDatabase } from "../test/support/service.js";

const enc = new TextEncoder();
const good = JSON.parse(resultLines(1)[0]!) as Record<string, unknown>;

/** Adversarial bodies: each must be rejected. */
const hostile: fc.Arbitrary<Uint8Array> = fc.oneof(
  // random bytes, mostly invalid UTF-8 or not JSON
  fc.uint8Array({ minLength: 0, maxLength: 2_000 }),
  // any JSON value but a valid result
  fc.jsonValue().map((v) => enc.encode(JSON.stringify(v) ?? "null")),
  // the right shape with a wrong type in one field (never a valid value: no integers for the
  // numeric fields, no arrays for matches, nothing date-like for recognizedAt)
  fc.tuple(
    fc.constantFrom("aid", "cid", "mid", "tid", "durationMs", "recognizedAt", "matches"),
    fc.oneof(fc.string({ maxLength: 12 }), fc.double({ noInteger: true }), fc.boolean(), fc.constant(null), fc.object({ maxDepth: 2 })),
  ).map(([key, value]) => enc.encode(JSON.stringify({ ...good, [key]: key === "recognizedAt" && typeof value === "string" ? `x${value}` : value }))),
  // match items with a wrong field
  fc.tuple(fc.constantFrom("assetId", "startMs", "endMs", "score"), fc.oneof(fc.string({ maxLength: 8 }), fc.constant(-1), fc.constant(1.5e300), fc.constant(null)))
    .map(([key, value]) => enc.encode(JSON.stringify({ ...good, matches: [{ assetId: 1, startMs: 0, endMs: 10, score: 0.5, [key]: value }] }))),
  // deep nesting, in the body and in an ignored field
  fc.integer({ min: 1_000, max: 200_000 }).map((depth) => enc.encode(`${"[".repeat(depth)}${"]".repeat(depth)}`)),
  fc.integer({ min: 1_000, max: 100_000 }).map((depth) => enc.encode(`{"aid":1,"x":${"{\"a\":".repeat(depth)}1${"}".repeat(depth)}`)),
  // too many match items
  fc.constant(enc.encode(JSON.stringify({ ...good, matches: Array.from({ length: 10_001 }, () => ({ assetId: 1, startMs: 0, endMs: 1, score: 1 })) }))),
  // a near-1 MiB body (the most NATS carries by default) that is not a result
  fc.integer({ min: 900_000, max: 1_040_000 }).map((n) => enc.encode(JSON.stringify({ ...good, aid: -1, pad: "x".repeat(n) }))),
  // invalid UTF-8 inside an otherwise valid result
  fc.constant(new Uint8Array([...enc.encode(JSON.stringify(good)).slice(0, -1), 0x2c, 0x22, 0xc3, 0x28, 0x22, 0x3a, 0x31, 0x7d])),
);

describe("decodeResult under fuzzing", () => {
  it("never throws; every rejection is one line of at most 300 characters", () => {
    fc.assert(
      fc.property(hostile, (bytes) => {
        const r = decodeResult(bytes);
        expect(r.ok).toBe(false);
        if (!r.ok) {
          expect(r.reason).toMatch(/^[^\n\r]+$/);
          expect(r.reason.length).toBeLessThanOrEqual(300);
        }
      }),
      // Bounded: a failure reports its counterexample without minutes of shrinking 200k-character strings.
      { numRuns: 300, interruptAfterTimeLimit: 60_000, markInterruptAsFailure: true, endOnFailure: true },
    );
  });

  it("any bytes at all: a value or a reason, never an exception", () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 4_096 }), (bytes) => typeof decodeResult(bytes).ok === "boolean"), { numRuns: 2_000 });
    expect(decodeResult(new Uint8Array(MAX_RESULT_BYTES + 1)).ok).toBe(false);
  });
});

let db: TestDatabase;
let nc: NatsConnection;
let config: Config;
let service: SpawnedService;


beforeAll(async () => {
  db = await seededDatabase();
  nc = await connectTest();
  const env = { ...uniqueNames(), DATABASE_URL: db.url, LOG_LEVEL: "warn", TORT_OPS_PORT: "0" };
  config = testConfig(db.url, env);
  await publishInputs(nc, config, []);
  service = spawnService(env);
});
afterAll(async () => {
  service?.child.kill("SIGTERM");
  await service?.exited;
  await removeTopology(nc, config).catch(() => {});
  await nc?.drain();
  await db?.drop();
});

describe("the live service under hostile input", () => {
  it("dead-letters each hostile message with a reason and verdicts the good ones between them", async () => {
    const bad = fc.sample(hostile, { numRuns: 400, seed: 20261128 });
    const goodLines = resultLines(400);
    const bodies: Uint8Array[] = [];
    bad.forEach((b, i) => bodies.push(b, enc.encode(goodLines[i]!)));
    let peakRss = 0;
    const sampler = setInterval(() => (peakRss = Math.max(peakRss, memoryOf(service.child.pid!).rssMb)), 50);
    const seqs = await publishInputs(nc, config, bodies);
    await eventually(async () => {
      const s = await consumerState(nc, config);
      return s.pending === 0 && s.ackPending === 0;
    }, "all settled", 180_000, 200);
    clearInterval(sampler);
    expect(service.child.exitCode).toBeNull(); // never a crash

    const dead = await readStream(nc, config.TORT_DEADLETTER_STREAM);
    const verdicts = await readVerdicts(nc, config);
    const badSeqs = new Set(seqs.filter((_, i) => i % 2 === 0));
    const goodSeqs = new Set(seqs.filter((_, i) => i % 2 === 1));
    expect(new Set(dead.map((m) => Number(m.headers!.get("Tort-Source-Seq"))))).toEqual(badSeqs);
    for (const m of dead) expect(m.headers!.get("Tort-Error")).toMatch(/^\S[^\n]*$/);
    expect(new Set(verdicts.map((v) => v.verdict.source.seq))).toEqual(goodSeqs);
    const reasons = new Map<string, number>();
    for (const m of dead) {
      const kind = m.headers!.get("Tort-Error").split(":")[0]!;
      reasons.set(kind, (reasons.get(kind) ?? 0) + 1);
    }
    const s = await consumerState(nc, config);
    expect(s.ackPending + s.pending + s.redelivered).toBe(0);
    const largest = Math.max(...bad.map((b) => b.byteLength));
    console.log(`hostile input: ${bad.length} hostile (largest ${(largest / 1024).toFixed(0)} KiB) + ${goodSeqs.size} good; dead letters ${dead.length}, verdicts ${verdicts.length}; reasons by field: ${[...reasons].map(([k, n]) => `${k} ${n}`).join(", ")}`);
    const memory = memoryOf(service.child.pid!);
    console.log(`hostile input: service RSS peak ${memory.peakMb.toFixed(0)} MB (sampled while processing: ${peakRss.toFixed(0)} MB), ${memory.rssMb.toFixed(0)} MB after`);
    expect(memory.peakMb).toBeLessThan(512);
  });
});
