/**
 * tortmatch's own service in a process of its own: starts on the configured
 * streams (messages already queued), waits until EXPECT messages are settled,
 * stops, and prints loads, peak RSS, timings and the limits it used as JSON (and `{"ready":true}`
 * once it has its first snapshot). TRACE_LIMIT=1: the limit, in flight, the adaptive limiter's round
 * trips and phase, every 50 ms, on stderr at the end.
 * Usage: EXPECT=n node --import tsx bench/children/service.ts
 */
import { connect } from "@nats-io/transport-node";
import { loadConfig } from "../../src/config.js";
import { createLogger } from "../../src/ops/logger.js";
import { openRuleDatabase } from "../../src/rules/database.js";
import { startService } from "../../src/service.js";

const expect = Number(process.env.EXPECT);
const config = loadConfig();
const nc = await connect({ servers: config.NATS_URL.split(","), noAsyncTraces: true });
const started = performance.now();
const database = openRuleDatabase({ url: config.DATABASE_URL });
const service = await startService({ config, log: createLogger(config.LOG_LEVEL), nc, database, pullExpiresMs: 1_000 });
let readyAt = 0;
service.snapshot$.subscribe((s) => {
  if (s !== null && readyAt === 0) {
    readyAt = performance.now();
    console.log(JSON.stringify({ ready: true })); // for a parent that publishes once the instance is ready
  }
});
// The limit in use, sampled: what an adaptive limit did over the run.
const limits = { min: Number.POSITIVE_INFINITY, max: 0 };
const trace: string[] = [];
const sampler = setInterval(() => {
  const limit = service.limit.limit;
  if (process.env.TRACE_LIMIT === "1" && readyAt > 0) {
    const v = service.concurrency.view();
    trace.push(`${Math.round(performance.now() - readyAt)}ms L${limit} f${service.stats.inFlight} rtt${v.sampleMs?.toFixed(1)}/${v.minRttMs?.toFixed(1)} ${v.phase ?? ""} s${service.stats.settled}`);
  }
  limits.min = Math.min(limits.min, limit);
  limits.max = Math.max(limits.max, limit);
}, 50);
const settled = () => service.stats.settled;
while (settled() < expect) {
  await new Promise((r) => setTimeout(r, 5));
}
const doneAt = performance.now();
clearInterval(sampler);
if (trace.length > 0) process.stderr.write(`${trace.join("\n")}\n`);
const concurrency = service.concurrency.view();
const loads = service.actor.system.get("ruleCache").getSnapshot().context.loads;
await service.stop();
await database.close();
await nc.drain();
console.log(
  JSON.stringify({
    loads,
    settled: settled(),
    maxRssMb: process.resourceUsage().maxRSS / 1024,
    readySeconds: (readyAt - started) / 1000,
    drainSeconds: (doneAt - readyAt) / 1000,
    maxInFlight: service.stats.maxInFlight,
    limit: { ...limits, last: concurrency.limit, mode: concurrency.mode, minRttMs: concurrency.minRttMs ?? null },
  }),
);
