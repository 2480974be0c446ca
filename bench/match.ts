/**
 * bench:match — results per second of the pure matcher over the seeded
 * results, one core, against the seeded rules; next to a baseline in the
 * same run: the JSON.parse of the same lines (what every message costs anyway).
 * Targets: at least 1,000,000 results per second (issue #9; 500,000 in #2);
 * decode + validate from the message's bytes within 1.5x the time of a bare
 * JSON.parse of the same lines (issue #9).
 */
import { readFileSync } from "node:fs";
import { decodeResult, decodeResultText } from "../src/ingest/decode-result.js";
import { matchResult } from "../src/match/match-result.js";
import { slotAssetId, slotCount } from "../src/match/snapshot.js";
import type { RecognitionResult } from "../src/match/types.js";
import { openRuleDatabase } from "../src/rules/database.js";
import { createRuleLoader } from "../src/rules/load-rules.js";
import { benchDatabaseUrl, median } from "./support.js";

const file = process.argv[2] ?? "artifacts/results.ndjson";
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
const database = openRuleDatabase({ url: benchDatabaseUrl });
const snapshot = await createRuleLoader(database).loadFull();
await database.close();

const lines = readFileSync(file, "utf8").split("\n").filter((l) => l !== "");
/** The lines as a message body arrives: bytes. */
const bodies = lines.map((l) => new TextEncoder().encode(l));
// The matcher's inputs live for the whole run, so they are kept as copies: were the decoder's own
// objects kept, V8 would see them survive and pretenure its allocation sites (every result decoded
// after that is allocated in the old generation: decode + validate measured 2.5 µs instead of 1.75;
// `node --no-allocation-site-pretenuring` shows the same 1.75). In the service a decoded result
// lives only while its message is in flight, not for the whole run.
const results: RecognitionResult[] = [];
for (const line of lines) {
  const checked = decodeResultText(line);
  if (checked.ok) results.push(structuredClone(checked.value));
}

const rate = (n: number, ms: number) => (n / ms) * 1000;
const matchRates: number[] = [];
const parseRates: number[] = [];
const decodeRates: number[] = [];
let sink = 0;
for (let round = 0; round < ROUNDS; round++) {
  let t = performance.now();
  for (const r of results) sink += matchResult(snapshot, r).hits.length;
  matchRates.push(rate(results.length, performance.now() - t));
  t = performance.now();
  for (const l of lines) {
    try {
      sink += JSON.parse(l) === null ? 1 : 0;
    } catch {
      sink++; // the seeded file has some invalid lines on purpose
    }
  }
  parseRates.push(rate(lines.length, performance.now() - t));
  t = performance.now();
  for (const b of bodies) sink += decodeResult(b).ok ? 1 : 0;
  decodeRates.push(rate(lines.length, performance.now() - t));
}
const m = median(matchRates);
const p = median(parseRates);
console.log(`bench:match  ${results.length} results against ${snapshot.counts.activeRules} active rules, ${ROUNDS} rounds, medians (sink ${sink})`);
const d = median(decodeRates);
console.log(`  matchResult         ${Math.round(m).toLocaleString("en")} results/s (target >= 1,000,000)`);
console.log(`  baseline JSON.parse ${Math.round(p).toLocaleString("en")} lines/s; matching costs ${(p / m).toFixed(2)}x a parse`);
console.log(`  decode + validate   ${Math.round(d).toLocaleString("en")} lines/s from bytes: ${(p / d).toFixed(2)}x the time of JSON.parse (target <= 1.5x)`);

// The worst valid input (issue #8): 10,000 match items on the asset the most rules share,
// in ascending, descending and shuffled order. Target: at most 20 ms each.
const index = snapshot.assetIndex;
let popularSlot = 0;
for (let s = 0; s < index.slots; s++) if (slotCount(index, s) > slotCount(index, popularSlot)) popularSlot = s;
const popularAsset = slotAssetId(index, popularSlot);
const worst = (order: "ascending" | "descending" | "shuffled"): RecognitionResult => {
  const matches = Array.from({ length: 10_000 }, (_, k) => ({ assetId: popularAsset, startMs: k * 8, endMs: k * 8 + 5, score: 1 }));
  if (order === "descending") matches.reverse();
  if (order === "shuffled") for (let i = matches.length - 1; i > 0; i--) { const j = (i * 7919) % (i + 1); [matches[i], matches[j]] = [matches[j]!, matches[i]!]; }
  return { aid: 1, cid: 1, mid: 1, tid: 1, durationMs: 80_000, recognizedAt: snapshot.loadedAt, recognizedAtMs: Date.parse(snapshot.loadedAt), matches };
};
for (const order of ["ascending", "descending", "shuffled"] as const) {
  const r = worst(order);
  const times: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const t = performance.now();
    sink += matchResult(snapshot, r).hits.length;
    times.push(performance.now() - t);
  }
  console.log(`  worst case ${order.padEnd(10)} 10,000 items on asset ${popularAsset} (${slotCount(index, popularSlot)} rules): ${median(times).toFixed(2)} ms (target <= 20 ms)`);
}
