/**
 * bench:match — results per second of the pure matcher over the seeded
 * results, one core, against the seeded rules; next to a baseline in the
 * same run: the JSON.parse of the same lines (what every message costs anyway).
 * Target (issue #2): at least 500,000 results per second.
 */
import { readFileSync } from "node:fs";
import { loadConfig } from "../src/config.js";
import { decodeResultText } from "../src/match/decode-result.js";
import { matchResult } from "../src/match/match-result.js";
import type { RecognitionResult } from "../src/match/types.js";
import { openRuleDatabase } from "../src/rules/database.js";
import { createRuleLoader } from "../src/rules/load-rules.js";
import { median } from "./support.js";

const file = process.argv[2] ?? "artifacts/results.ndjson";
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
const config = loadConfig();
const database = openRuleDatabase({ url: config.DATABASE_URL });
const snapshot = await createRuleLoader(database).loadFull();
await database.close();

const lines = readFileSync(file, "utf8").split("\n").filter((l) => l !== "");
const results: RecognitionResult[] = [];
for (const line of lines) {
  const checked = decodeResultText(line);
  if (checked.ok) results.push(checked.value);
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
  for (const l of lines) sink += decodeResultText(l).ok ? 1 : 0;
  decodeRates.push(rate(lines.length, performance.now() - t));
}
const m = median(matchRates);
const p = median(parseRates);
console.log(`bench:match  ${results.length} results against ${snapshot.counts.activeRules} active rules, ${ROUNDS} rounds, medians (sink ${sink})`);
console.log(`  matchResult         ${Math.round(m).toLocaleString("en")} results/s (target >= 500,000)`);
console.log(`  baseline JSON.parse ${Math.round(p).toLocaleString("en")} lines/s; matching costs ${(p / m).toFixed(2)}x a parse`);
console.log(`  decode + validate   ${Math.round(median(decodeRates)).toLocaleString("en")} lines/s`);
