/**
 * bench:whatif — `whatif` over 50,000 retained inputs and their recorded
 * verdicts, next to the baseline measured in the same run: a bare ordered
 * consumer read of the same input stream with a JSON.parse of each message.
 * Interleaved rounds, medians. Target (issue #11): at least 0.5x the bare read.
 */
import { DeliverPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { headers } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { readFileSync, writeFileSync } from "node:fs";
import { Session } from "node:inspector";
import { loadConfig } from "../src/config.js";
import { decodeResultText } from "../src/ingest/decode-result.js";
import { buildVerdict, matchResult } from "../src/match/match-result.js";
import { openRuleDatabase } from "../src/rules/database.js";
import { createRuleLoader } from "../src/rules/load-rules.js";
import { runWhatIf } from "../src/whatif/whatif.js";
import { publishInputs, removeTopology, uniqueNames } from "../test/support/nats.js";
import { benchDatabaseUrl, median } from "./support.js";

const N = Number(process.env.WHATIF_RESULTS ?? 50_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const config = loadConfig({ ...uniqueNames(), DATABASE_URL: benchDatabaseUrl });
const database = openRuleDatabase({ url: benchDatabaseUrl });
const snapshot = await createRuleLoader(database).loadFull();
await database.close();
const nc = await connect({ servers: process.env.NATS_URL ?? "127.0.0.1:4222", noAsyncTraces: true });
const jsm = await jetstreamManager(nc);
const js = jetstream(nc);

const lines = readFileSync("artifacts/bench-results.ndjson", "utf8").split("\n").filter(Boolean);
const inputs = Array.from({ length: N }, (_, i) => lines[i % lines.length]!);
const seqs = await publishInputs(nc, config, inputs);
// The recorded verdicts, as the service would have published them.
await jsm.streams.add({ name: config.TORT_VERDICT_STREAM, subjects: [`${config.TORT_VERDICT_SUBJECT_PREFIX}.>`] });
const enc = new TextEncoder();
let pending: Promise<unknown>[] = [];
for (let i = 0; i < inputs.length; i++) {
  const checked = decodeResultText(inputs[i]!);
  if (!checked.ok) continue;
  const source = { stream: config.TORT_INPUT_STREAM, seq: seqs[i]! };
  const verdict = buildVerdict(checked.value, matchResult(snapshot, checked.value), snapshot.version, source, new Date().toISOString());
  const h = headers();
  h.set("Nats-Msg-Id", `${source.stream}:${source.seq}`);
  pending.push(js.publish(`${config.TORT_VERDICT_SUBJECT_PREFIX}.${verdict.action}`, enc.encode(JSON.stringify(verdict)), { headers: h }));
  if (pending.length === 1_000) {
    await Promise.all(pending);
    pending = [];
  }
}
await Promise.all(pending);

async function bareRead(): Promise<number> {
  const consumer = await js.consumers.get(config.TORT_INPUT_STREAM, { deliver_policy: DeliverPolicy.All });
  let read = 0;
  let sink = 0;
  while (read < N) {
    for await (const m of await consumer.fetch({ max_messages: 1_000, expires: 2_000 })) {
      read++;
      try {
        sink += JSON.parse(m.string()) === null ? 1 : 0;
      } catch {
        sink++;
      }
      if (m.info.pending === 0) break;
    }
  }
  return read + sink * 0;
}

// WHATIF_PROFILE=file.cpuprofile: a CPU profile of the whatif rounds alone (not the set-up).
const profiler = process.env.WHATIF_PROFILE ? new Session() : null;
const post = (method: string, params: object = {}) => new Promise<unknown>((resolve, reject) => profiler!.post(method, params, (err, r) => (err ? reject(err) : resolve(r))));
if (profiler) {
  profiler.connect();
  await post("Profiler.enable");
}
const rates = { bare: [] as number[], whatif: [] as number[] };
let summary = "";
for (let round = 0; round < ROUNDS; round++) {
  for (const kind of round % 2 === 0 ? (["bare", "whatif"] as const) : (["whatif", "bare"] as const)) {
    const started = performance.now();
    let n: number;
    if (kind === "bare") n = await bareRead();
    else {
      if (profiler) await post("Profiler.start");
      const report = await runWhatIf({ jsm, js, inputStream: config.TORT_INPUT_STREAM, verdictStream: config.TORT_VERDICT_STREAM, candidate: snapshot });
      n = report.summary.inputs;
      if (profiler) writeFileSync(process.env.WHATIF_PROFILE!, JSON.stringify(((await post("Profiler.stop")) as { profile: unknown }).profile));
      summary = JSON.stringify(report.summary);
    }
    rates[kind].push((n / (performance.now() - started)) * 1000);
  }
}
await removeTopology(nc, config);
await nc.drain();
const bare = median(rates.bare);
const whatif = median(rates.whatif);
console.log(`bench:whatif  ${N.toLocaleString("en")} inputs and their recorded verdicts, ${ROUNDS} rounds, medians`);
console.log(`  bare ordered read + JSON.parse   ${Math.round(bare).toLocaleString("en")} messages/s`);
console.log(`  whatif (both streams, match)     ${Math.round(whatif).toLocaleString("en")} inputs/s = ${(whatif / bare).toFixed(2)}x the bare read (target >= 0.5x)`);
console.log(`  summary ${summary}`);
