/**
 * The original failure, ported: a message handler that loads the whole rule
 * table into its map whenever the map is empty. K handlers run at once at
 * start-up, as K concurrent messages would make them. Prints loads and peak RSS.
 * Usage: node --import tsx bench/children/naive-handler.ts K
 */
import mysql from "mysql2/promise";

const K = Number(process.argv[2] ?? 64);
const url = process.env.DATABASE_URL ?? "mysql://root@127.0.0.1:3306/tortmatch_bench";
// The original used a pool sized for its handlers; capped at 64 connections here.
const pool = mysql.createPool({ uri: url, connectionLimit: Math.min(K, 64), dateStrings: true });

type Row = Record<string, unknown>;
let rules = new Map<number, { rule: Row; properties: Row[] }>();
let loads = 0;

async function handleMessage(assetId: number): Promise<number> {
  if (rules.size === 0) {
    loads++;
    const [ruleRows] = await pool.query("SELECT * FROM video_tort_rule");
    const [propertyRows] = await pool.query("SELECT * FROM video_tort_rule_property");
    const built = new Map<number, { rule: Row; properties: Row[] }>();
    for (const rule of ruleRows as Row[]) built.set(rule.id as number, { rule, properties: [] });
    for (const p of propertyRows as Row[]) built.get(p.rule_id as number)?.properties.push(p);
    rules = built;
  }
  let hits = 0;
  for (const { properties } of rules.values()) if (properties.some((p) => p.kind === "asset" && Number(p.value) === assetId)) hits++;
  return hits;
}

const started = performance.now();
await Promise.all(Array.from({ length: K }, (_, k) => handleMessage(5_550_001 + k)));
await pool.end();
console.log(JSON.stringify({ loads, maxRssMb: process.resourceUsage().maxRSS / 1024, seconds: (performance.now() - started) / 1000 }));
