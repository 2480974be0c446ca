/**
 * bench:load — wall time and peak heap+buffers to build the rule snapshot from the
 * seeded tables, next to a plain mysql2 `SELECT *` of the same two tables in
 * the same run (alternating, medians of several rounds), and the heap the
 * built snapshot retains. Seed first: `tortmatch seed` (the npm script does).
 * Targets: time at most 1.2x the plain select (issue #9; 1.3x in #2); retained at most 60 MB.
 */
import { openRuleDatabase } from "../src/rules/database.js";
import { createRuleLoader, DEFAULT_PAGE_SIZE } from "../src/rules/load-rules.js";
import type { RuleSnapshot } from "../src/match/snapshot.js";
import { benchDatabaseUrl, collectGarbage, heapAndBuffers, mb, median, ratio, withPeakHeap } from "./support.js";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const database = openRuleDatabase({ url: benchDatabaseUrl, connectionLimit: 2 });
const loader = createRuleLoader(database, { pageSize: DEFAULT_PAGE_SIZE });

async function plainSelect(): Promise<number> {
  const [rules] = await database.pool.query("SELECT * FROM video_tort_rule");
  const [properties] = await database.pool.query("SELECT * FROM video_tort_rule_property");
  return (rules as unknown[]).length + (properties as unknown[]).length;
}

const times = { plain: [] as number[], snapshot: [] as number[] };
const heaps = { plain: [] as number[], snapshot: [] as number[] };
let rows = 0;
const run = (kind: "plain" | "snapshot", sample?: () => void): Promise<number | RuleSnapshot> =>
  kind === "plain" ? plainSelect() : loader.loadFull(sample === undefined ? {} : { onProgress: sample });

/**
 * Heap and buffers one held snapshot adds, measured before any other load (a
 * suspended async frame can keep an earlier round's snapshot alive and hide it).
 */
async function measureRetained(): Promise<{ retained: number; counts: RuleSnapshot["counts"] }> {
  collectGarbage();
  const without = heapAndBuffers();
  const held = await loader.loadFull();
  collectGarbage();
  return { retained: heapAndBuffers() - without, counts: held.counts };
}
const { retained, counts } = await measureRetained();
await plainSelect(); // warm the server's buffer pool and the connections
await loader.loadFull();
// Timed rounds run without the heap sampler (it costs the async load more than
// the one synchronous parse of the plain select); peak heap is taken in rounds of its own.
for (let round = 0; round < ROUNDS; round++) {
  for (const kind of round % 2 === 0 ? (["plain", "snapshot"] as const) : (["snapshot", "plain"] as const)) {
    collectGarbage();
    const started = performance.now();
    const value = await run(kind);
    times[kind].push(performance.now() - started);
    if (kind === "plain") rows = value as number;
  }
}
for (let round = 0; round < 3; round++) {
  for (const kind of ["plain", "snapshot"] as const) {
    heaps[kind].push((await withPeakHeap((sample) => run(kind, sample))).peakHeapBytes);
  }
}
await database.close();

const tPlain = median(times.plain);
const tSnap = median(times.snapshot);
console.log(`bench:load  ${rows} rows (${counts.ruleRows} rules, ${counts.propertyRows} properties), ${ROUNDS} rounds, medians`);
console.log(`  plain SELECT *   ${tPlain.toFixed(0).padStart(6)} ms   peak heap+buffers ${mb(median(heaps.plain))}`);
console.log(`  snapshot load    ${tSnap.toFixed(0).padStart(6)} ms   peak heap+buffers ${mb(median(heaps.snapshot))}   ${ratio(tSnap, tPlain)} of plain (target <= 1.20x)`);
console.log(`  snapshot retained heap+buffers ${mb(retained)} (target <= 60 MB)`);
