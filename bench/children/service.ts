/**
 * tortmatch's own service in a process of its own: starts on the configured
 * streams (messages already queued), waits until EXPECT messages are settled,
 * stops, and prints loads, peak RSS and timings as JSON.
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
  if (s !== null && readyAt === 0) readyAt = performance.now();
});
const settled = () => service.stats.settled;
while (settled() < expect) {
  await new Promise((r) => setTimeout(r, 5));
}
const doneAt = performance.now();
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
  }),
);
