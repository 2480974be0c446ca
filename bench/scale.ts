/**
 * bench:scale — the rule set at 1x, 10x and 50x the default size (5k/180k,
 * 50k/1.8M, 250k/9M rows), each seeded into a database of its own (kept for
 * later runs; BENCH_RESEED=1 seeds again). Nx is N copies of the 1x rule set
 * on disjoint assets (as N catalogues of rights holders): every asset is shared
 * by as many rules as at 1x, so the matcher's figure shows what table size
 * costs, not a denser dataset. Measured: load time, rows/s, the snapshot's
 * retained heap and buffers, bytes per property row, the memory budget's own
 * estimate next to it, and the matcher's results/s on results drawn from the
 * same dataset. Targets (issue #11): load time and memory linear (bytes per
 * row within 15% across sizes); the matcher at 50x at least 0.7x its rate at 1x.
 * SCALE_FACTORS=1,10 for a shorter run.
 */
import { decodeResultText } from "../src/ingest/decode-result.js";
import { matchResult } from "../src/match/match-result.js";
import type { RecognitionResult } from "../src/match/types.js";
import { createDatabaseIfMissing, migrateRuleTables, openRuleDatabase } from "../src/rules/database.js";
import { createRuleLoader } from "../src/rules/load-rules.js";
import { PROPERTY_ROW_BYTES, RULE_ROW_BYTES } from "../src/match/snapshot-budget.js";
import { createRandom, generateProperties, generateResultLines, generateRules } from "../src/seed/generate-dataset.js";
import { writeRules } from "../src/seed/write-rules.js";
import { collectGarbage, heapAndBuffers, median } from "./support.js";

const FACTORS = (process.env.SCALE_FACTORS ?? "1,10,50").split(",").map(Number);
const ONE_X = { rules: 5_000, properties: 180_000, seed: 42 };
/** Each copy's ids and asset ids are shifted by these: disjoint from every other copy's. */
const RULE_ID_STRIDE = 1_000_000;
const PROPERTY_ID_STRIDE = 1_000_000;
const ASSET_STRIDE = 10_000_000;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const base = new URL(process.env.BENCH_DATABASE_URL ?? "mysql://root@127.0.0.1:3306/tortmatch_bench");

interface Row {
  factor: number;
  rules: number;
  properties: number;
  loadMs: number;
  retainedBytes: number;
  estimateBytes: number;
  matchRate: number;
}
const rows: Row[] = [];

for (const factor of FACTORS) {
  const url = new URL(base);
  url.pathname = `/tortmatch_scale_copies_${factor}x`;
  await createDatabaseIfMissing(url.toString());
  const database = openRuleDatabase({ url: url.toString(), connectionLimit: 2 });
  await migrateRuleTables(database);
  const [[count]] = (await database.pool.query({ sql: "SELECT COUNT(*) FROM video_tort_rule_property", rowsAsArray: true })) as unknown as [[[number]]];
  if (Number(count![0]) !== ONE_X.properties * factor || process.env.BENCH_RESEED === "1") {
    const started = performance.now();
    await writeRules(database, generateRules(ONE_X), generateProperties(ONE_X));
    for (let copy = 1; copy < factor; copy++) {
      await database.pool.query(
        `INSERT INTO video_tort_rule (id, name, owner_id, action, priority, min_matched_ms, min_ratio_bp, min_score, state, valid_from, valid_to, is_deleted)
         SELECT id + ?, name, owner_id, action, priority, min_matched_ms, min_ratio_bp, min_score, state, valid_from, valid_to, is_deleted FROM video_tort_rule WHERE id <= ?`,
        [copy * RULE_ID_STRIDE, RULE_ID_STRIDE],
      );
      await database.pool.query(
        `INSERT INTO video_tort_rule_property (id, rule_id, kind, value, state, is_deleted)
         SELECT id + ?, rule_id + ?, kind, IF(kind = 'asset' AND value REGEXP '^[0-9]+$', CAST(CAST(value AS UNSIGNED) + ? AS CHAR), value), state, is_deleted
         FROM video_tort_rule_property WHERE id <= ?`,
        [copy * PROPERTY_ID_STRIDE, copy * RULE_ID_STRIDE, copy * ASSET_STRIDE, PROPERTY_ID_STRIDE],
      );
    }
    console.error(`seeded ${factor}x (${factor} copies of ${ONE_X.rules} rules and ${ONE_X.properties} properties) in ${((performance.now() - started) / 1000).toFixed(0)} s`);
  }
  const loader = createRuleLoader(database);
  // Retained: heap and buffers one held snapshot adds, measured before any timed load.
  collectGarbage();
  const without = heapAndBuffers();
  let snapshot = await loader.loadFull();
  collectGarbage();
  const retainedBytes = heapAndBuffers() - without;
  const times: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    collectGarbage();
    const started = performance.now();
    snapshot = await loader.loadFull();
    times.push(performance.now() - started);
  }
  await database.close();

  // The 1x results, each moved onto one copy's assets at random.
  const results: RecognitionResult[] = [];
  const random = createRandom(7);
  for (const line of generateResultLines({ ...ONE_X, results: 20_000, invalidShare: 0 })) {
    const value = JSON.parse(line) as { matches: { assetId: number }[] };
    const shift = Math.floor(random() * factor) * ASSET_STRIDE;
    for (const m of value.matches) m.assetId += shift;
    const checked = decodeResultText(JSON.stringify(value));
    if (checked.ok) results.push(checked.value);
  }
  const rates: number[] = [];
  let sink = 0;
  for (let round = 0; round < ROUNDS + 2; round++) {
    const started = performance.now();
    for (const r of results) sink += matchResult(snapshot, r).hits.length;
    rates.push((results.length / (performance.now() - started)) * 1000);
  }
  if (sink < 0) console.log(sink);
  const rulesRead = snapshot.counts.ruleRows + snapshot.counts.skippedRules;
  const propertiesRead = snapshot.table.properties.length;
  rows.push({
    factor,
    rules: rulesRead,
    properties: propertiesRead,
    loadMs: median(times),
    retainedBytes,
    estimateBytes: rulesRead * RULE_ROW_BYTES + propertiesRead * PROPERTY_ROW_BYTES,
    matchRate: median(rates),
  });
  snapshot = null as never;
}

const one = rows[0]!;
const perRow = (r: Row) => r.retainedBytes / (r.rules + r.properties);
console.log(`bench:scale  ${ROUNDS} rounds, medians; baseline: the 1x row of this run`);
console.log("  size  rules    properties  load ms   rows/s      retained MB  bytes/row (vs 1x)  budget estimate MB  matcher results/s (vs 1x)");
for (const r of rows) {
  const total = r.rules + r.properties;
  console.log(
    `  ${`${r.factor}x`.padEnd(5)} ${String(r.rules).padEnd(8)} ${String(r.properties).padEnd(11)} ${r.loadMs.toFixed(0).padStart(7)}  ${Math.round((total / r.loadMs) * 1000).toLocaleString("en").padStart(10)}  ${(r.retainedBytes / 2 ** 20).toFixed(1).padStart(11)}  ${perRow(r).toFixed(1).padStart(6)} (${(perRow(r) / perRow(one)).toFixed(2)}x)  ${(r.estimateBytes / 2 ** 20).toFixed(1).padStart(18)}  ${Math.round(r.matchRate).toLocaleString("en").padStart(9)} (${(r.matchRate / one.matchRate).toFixed(2)}x)`,
  );
}
console.log(`  targets: bytes/row within 15% across sizes; matcher at the largest size >= 0.7x its 1x rate; the estimate (TORT_SNAPSHOT_MAX_MB's) at or above retained`);
