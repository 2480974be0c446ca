/**
 * `tortmatch demo`: the live service on seeded data, ending by itself.
 * Seeds the rule tables, publishes a burst of results before the rule cache
 * is ready, starts the service, shows progress while it drains the burst,
 * and prints a summary. Uses streams and buckets of its own (removed at the end).
 */
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { Presets, SingleBar } from "cli-progress";
import { randomBytes } from "node:crypto";
import { loadConfig, type Config } from "../config.js";
import { createLogger } from "../ops/logger.js";
import { createDatabaseIfMissing, migrateRuleTables, openRuleDatabase } from "../rules/database.js";
import { generateProperties, generateResultLines, generateRules } from "../seed/generate-dataset.js";
import { writeRules } from "../seed/write-rules.js";
import { startApp } from "../app.js";
import type { RunningService } from "../service.js";
import { connectNats } from "../nats/connection.js";
import { createdBy } from "./ops-commands.js";
import { VERDICT_ACTIONS } from "../match/types.js";

export interface DemoOptions {
  results: number;
  rules: number;
  properties: number;
  seed: number;
}

/** Names of the demo's own: its streams, consumer, subjects and buckets never meet a real deployment's. */
function demoNames(id: string): Record<string, string> {
  return {
    TORT_INPUT_STREAM: `DEMO_RESULTS_${id}`,
    TORT_INPUT_SUBJECTS: `demo${id}.fingerprint.results.>`,
    TORT_CONSUMER: `tortmatch_demo_${id}`,
    TORT_VERDICT_STREAM: `DEMO_VERDICTS_${id}`,
    TORT_VERDICT_SUBJECT_PREFIX: `demo${id}.tort.verdicts`,
    TORT_DEADLETTER_STREAM: `DEMO_DEADLETTER_${id}`,
    TORT_DEADLETTER_SUBJECT: `demo${id}.tort.deadletter`,
    TORT_RULES_CHANGED_SUBJECT: `demo${id}.tort.rules.changed`,
    TORT_CONFIG_BUCKET: `demo_config_${id}`,
    TORT_EXHAUSTED_STREAM: `DEMO_EXHAUSTED_${id}`,
    TORT_EXPLAIN_SUBJECT: `demo${id}.tort.explain`,
    // A fleet of its own: the demo must never lead, or follow, a real fleet on the same NATS.
    TORT_RULES_BUCKET: `demo_rules_${id}`,
    TORT_SNAPSHOT_BUCKET: `demo_snapshots_${id}`,
  };
}

/** The seeded dataset, in the demo's database (created when missing). */
async function seedDemo(config: Config, opts: DemoOptions, say: (line: string) => void): Promise<void> {
  await createDatabaseIfMissing(config.DATABASE_URL);
  const seedDb = openRuleDatabase({ url: config.DATABASE_URL });
  await seedDb.ping();
  await migrateRuleTables(seedDb);
  const written = await writeRules(seedDb, generateRules(opts), generateProperties(opts));
  await seedDb.close();
  say(`seeded ${written.rules} rules and ${written.properties} properties into ${seedDb.describe}`);
}

/** The burst, published by a producer connection of its own before the service starts, 1,000 PubAcks awaited at a time. */
async function publishBurst(jsm: JetStreamManager, config: Config, opts: DemoOptions): Promise<void> {
  await jsm.streams.add({ name: config.TORT_INPUT_STREAM, subjects: [config.TORT_INPUT_SUBJECTS] });
  const js = jsm.jetstream();
  const subject = config.TORT_INPUT_SUBJECTS.replace(">", "demo");
  const encoder = new TextEncoder();
  let batch: Promise<unknown>[] = [];
  for (const line of generateResultLines({ ...opts, results: opts.results })) {
    batch.push(js.publish(subject, encoder.encode(line)));
    if (batch.length === 1000) {
      await Promise.all(batch);
      batch = [];
    }
  }
  await Promise.all(batch);
}

/** Waits until `total` are settled, drawing a progress bar; resolves with when the first snapshot went into service. */
async function drainWithProgress(service: RunningService, total: number): Promise<number> {
  let readyAt = 0;
  service.snapshot$.subscribe((s) => {
    if (s !== null && readyAt === 0) readyAt = performance.now();
  });
  const bar = new SingleBar(
    { format: "draining [{bar}] {percentage}% | {value}/{total} results | {rate}/s", stream: process.stdout, noTTYOutput: true, notTTYSchedule: 1000 },
    Presets.shades_classic,
  );
  bar.start(total, 0, { rate: 0 });
  const settled = () => service.stats.settled;
  while (settled() < total) {
    await new Promise((r) => setTimeout(r, 100));
    const seconds = readyAt === 0 ? 0 : (performance.now() - readyAt) / 1000;
    bar.update(settled(), { rate: seconds > 0 ? Math.round(settled() / seconds) : 0 });
  }
  bar.stop();
  return readyAt;
}

export async function demoCommand(opts: DemoOptions): Promise<void> {
  const config = loadConfig({ ...process.env, ...demoNames(randomBytes(3).toString("hex")) });
  // Only errors while the progress bar draws; what the log would say is in the summary.
  const log = createLogger(config.LOG_LEVEL === "info" ? "error" : config.LOG_LEVEL);
  const say = (line: string) => process.stdout.write(`${line}\n`);
  await seedDemo(config, opts, say);
  const producer = await connectNats(config, "tortmatch-demo-producer");
  const jsm = await jetstreamManager(producer);
  await publishBurst(jsm, config, opts);
  say(`published a burst of ${opts.results} recognition results to ${config.TORT_INPUT_STREAM} before the service started`);

  const started = performance.now();
  // The service's own composition root, as `run` uses it; the ops server on any free port (never colliding with a running service).
  const app = await startApp({ config, log, opsPort: 0, connectionName: "tortmatch-demo", pullExpiresMs: 1_000 });
  const { service } = app;
  const ops = app.ops!;
  say(`status page while the demo runs: ${ops.url}`);
  const readyAt = await drainWithProgress(service, opts.results);
  const doneAt = performance.now();
  const cache = service.actor.system.get("ruleCache").getSnapshot().context;
  const failure = await app.close();
  const created = createdBy(config);
  for (const s of [...created.streams, ...created.buckets.map((b) => b.stream)]) {
    await jsm.streams.delete(s).catch(() => {});
  }
  await producer.drain();

  const { stats } = service;
  say("summary");
  say(`  rule loads:        ${cache.loads} (snapshot ${cache.version}, ready ${((readyAt - started) / 1000).toFixed(2)} s after start, ${service.stats.peakWaiting} results pulled and waiting for it, the rest left in JetStream)`);
  say(`  verdicts:          ${VERDICT_ACTIONS.map((a) => `${a} ${stats.verdicts[a]}`).join(", ")}`);
  const skipped = service.snapshot$.value?.counts;
  say(`  skipped rows:      ${skipped ? `${skipped.skippedRules} rules, ${skipped.skippedProperties} properties (they break the contract; \`tortmatch run\` logs them once per change of the set)` : "-"}`);
  say(`  dead letters:      ${stats.outcomes["dead-letter"]} (invalid inputs, with their reasons in the Tort-Error header)`);
  say(`  throughput:        ${Math.round(opts.results / ((doneAt - readyAt) / 1000))} results/s once ready; most in flight ${stats.maxInFlight} of ${service.limit.limit}`);
  say(`  peak RSS:          ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB`);
  say(`  status page was:   ${ops.url} (run \`tortmatch run\` for one that stays: ${config.TORT_OPS_HOST}:${config.TORT_OPS_PORT})`);
  if (failure !== null) throw new Error(`the service stopped with a failure: ${failure}`);
}
