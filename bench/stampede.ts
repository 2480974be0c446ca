/**
 * bench:stampede — the start-up stampede. For K = 16, 64 and 256 concurrent
 * messages at start-up, the naive handler (loads the table whenever its map is
 * empty) against tortmatch (the real service, K messages queued in JetStream
 * before it starts), same seeded data, each run in a fresh process. The
 * baseline is tortmatch handling a single message: one load.
 * Target (issue #3): tortmatch makes 1 load with peak RSS at most 1.2x that
 * of a single load, at every K.
 */
import { connect } from "@nats-io/transport-node";
import { readFileSync } from "node:fs";
import { loadConfig } from "../src/config.js";
import { publishInputs, removeTopology, uniqueNames } from "../test/support/nats.js";
import { runChild } from "./children/run-child.js";
import { benchDatabaseUrl } from "./support.js";

const KS = (process.env.STAMPEDE_KS ?? "16,64,256").split(",").map(Number);
const databaseUrl = benchDatabaseUrl;
const lines = readFileSync("artifacts/bench-results.ndjson", "utf8").split("\n").filter(Boolean);
const nc = await connect({ servers: process.env.NATS_URL ?? "127.0.0.1:4222", noAsyncTraces: true });

interface ServiceRun { loads: number; maxRssMb: number; readySeconds: number }
interface NaiveRun { loads: number; maxRssMb: number; seconds: number }

async function tortmatch(k: number): Promise<ServiceRun> {
  const env = { ...uniqueNames(), DATABASE_URL: databaseUrl, LOG_LEVEL: "warn" };
  const config = loadConfig(env);
  await publishInputs(nc, config, lines.slice(0, k));
  try {
    return await runChild<ServiceRun>("./service.ts", [], { ...env, EXPECT: String(k) });
  } finally {
    await removeTopology(nc, config);
  }
}

const single = await tortmatch(1);
console.log(`bench:stampede  seeded rules (${databaseUrl.split("/").pop()}), fresh process per run, peak RSS = maxRSS`);
console.log(`  baseline: tortmatch, 1 message        loads 1   peak RSS ${single.maxRssMb.toFixed(0)} MB`);
for (const k of KS) {
  const naive = await runChild<NaiveRun>("./naive-handler.ts", [String(k)], { DATABASE_URL: databaseUrl });
  const ours = await tortmatch(k);
  console.log(
    `  K=${String(k).padEnd(4)} naive: loads ${String(naive.loads).padStart(3)}  peak RSS ${naive.maxRssMb.toFixed(0).padStart(5)} MB   |   ` +
      `tortmatch: loads ${ours.loads}  peak RSS ${ours.maxRssMb.toFixed(0).padStart(4)} MB = ${(ours.maxRssMb / single.maxRssMb).toFixed(2)}x single (target 1 load, <= 1.20x)`,
  );
}
await nc.drain();
