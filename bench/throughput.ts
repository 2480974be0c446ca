/**
 * bench:throughput — end-to-end results per second through tortmatch (real
 * NATS, the seeded 185k-row rules, 50,000 results queued) next to a bare
 * consume → publish → ack loop over the same messages in the same run, with
 * the same concurrency (64), and next to that loop doing tortmatch's own work
 * inline, a stage at a time (decode and validate; and match; and encode the verdict: what the work
 * the spec asks for costs a loop with nothing else of tortmatch's), next to the bare loop pulling
 * with tortmatch's own pull on credit (what the credit bound costs), and next
 * to the bare loop publishing with tortmatch's PubAck inbox instead of the
 * client's js.publish (what that saves), and next to tortmatch's own parts joined by a bare loop
 * (its pull on credit, its work and its PubAck inbox, without the pipeline: what they allow at most),
 * with the CPU a message took of this process's main thread and of nats-server in each of them;
 * then p50/p99 latency of both at a steady rate after a warm-up
 * (input stored → output stored, server timestamps); then the peak RSS of
 * tortmatch starting on 200,000 queued results, in a process of its own.
 * Then the scale-out line: 1, 2 and 3 instances of `tortmatch run`, each a
 * process of its own, on one durable consumer.
 * Targets: at least 0.9x the bare loop and a p99 at half load at most 2x the
 * bare loop's (issue #9); at most 250 MB RSS (issue #3).
 */
import { AckPolicy, jetstream, jetstreamManager, type JsMsg } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { readFileSync } from "node:fs";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { freePort as freePortNumber } from "../test/support/nats-server.js";
import { loadConfig, type Config } from "../src/config.js";
import { createLogger } from "../src/ops/logger.js";
import { openRuleDatabase } from "../src/rules/database.js";
import { startService, type RunningService } from "../src/service.js";
import { isoClock } from "../src/pipeline.js";
import { publishInputs, readStream, removeTopology, uniqueNames } from "../test/support/nats.js";
import { runChild } from "./children/run-child.js";
import { decodeResult } from "../src/ingest/decode-result.js";
import { pullMessages } from "../src/ingest/pull-messages.js";
import { createConcurrencyLimit } from "../src/gate/concurrency-limit.js";
import { createByteBudget } from "../src/gate/byte-budget.js";
import { buildVerdict, matchResult } from "../src/match/match-result.js";
import { encodeVerdict } from "../src/verdict/publish.js";
import { createJetStreamPublish } from "../src/verdict/jetstream-publish.js";
import { createRuleLoader } from "../src/rules/load-rules.js";
import { createMetrics } from "../src/ops/metrics.js";
import { createServiceStats } from "../src/ops/service-stats.js";
import { createLatencyWindow } from "../src/ops/history.js";
import type { RecognitionResult } from "../src/match/types.js";
import type { RuleSnapshot } from "../src/match/snapshot.js";
import { benchDatabaseUrl, cpuClocks, median } from "./support.js";

const N = Number(process.env.THROUGHPUT_RESULTS ?? 50_000);
const BACKLOG = Number(process.env.THROUGHPUT_BACKLOG ?? 200_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const CONCURRENCY = 64;
const databaseUrl = benchDatabaseUrl;
const lines = readFileSync("artifacts/bench-results.ndjson", "utf8").split("\n").filter(Boolean);
const natsUrl = process.env.NATS_URL ?? "127.0.0.1:4222";
const nc = await connect({ servers: natsUrl, noAsyncTraces: true });
const clocks = cpuClocks(natsUrl);
const jsm = await jetstreamManager(nc);
const js = jetstream(nc);
const log = createLogger("warn");

const encoder = new TextEncoder();
const inputs = (n: number) => Array.from({ length: n }, (_, i) => lines[i % lines.length]!);
const freshConfig = (): Config => loadConfig({ ...uniqueNames(), DATABASE_URL: databaseUrl, LOG_LEVEL: "warn", TORT_CONCURRENCY: String(CONCURRENCY) });
const settledOf = (s: RunningService) => s.stats.settled;
const until = async (done: () => boolean) => {
  while (!done()) await new Promise((r) => setTimeout(r, 2));
};

/** What a bare loop needs besides the input stream: the verdict stream and the durable consumer. */
async function bareTopology(config: Config): Promise<void> {
  await jsm.streams.add({ name: config.TORT_VERDICT_STREAM, subjects: [`${config.TORT_VERDICT_SUBJECT_PREFIX}.>`] });
  await jsm.consumers.add(config.TORT_INPUT_STREAM, { durable_name: config.TORT_CONSUMER, ack_policy: AckPolicy.Explicit, max_ack_pending: 20_000 });
}

interface BareOptions {
  readonly expected: () => number;
  /** Told the count of settled messages after each settlement. */
  readonly onSettled?: (settled: number) => void;
  /** Publish the verdict instead, decoded, matched and encoded inline against this snapshot. */
  readonly work?: RuleSnapshot;
  /** With `work`, stop after this stage and publish the input's own bytes (after matching, to its action's subject). */
  readonly upTo?: WorkStage;
  /** Publish with tortmatch's PubAck inbox (src/verdict/jetstream-publish.ts) instead of the client's js.publish. */
  readonly ownPublish?: boolean;
}

/** A bare loop's publish with Nats-Msg-Id, awaiting the PubAck: the client's js.publish, or tortmatch's PubAck inbox. */
function bareLoopPublish(ownPublish: boolean | undefined): { publish(subject: string, body: Uint8Array, msgId: string): Promise<unknown>; close(): void } {
  if (!ownPublish) return { publish: (subject, body, msgId) => js.publish(subject, body, { msgID: msgId }), close: () => {} };
  const own = createJetStreamPublish(nc, { timeoutMs: 10_000, log });
  return { publish: (subject, body, msgId) => own.publish(subject, body, msgId), close: () => own.close() };
}

/** Where a loop's inline work may stop: after decoding and validating, or after matching too. */
type WorkStage = "decode" | "match";

/**
 * tortmatch's work done inline by a bare loop: decode, match, encode the verdict, and its subject; with
 * `upTo`, only the stages up to it, and the input's own bytes go out. An input that does not decode is
 * published as it came, to `fallback` (the loops do not dead-letter).
 */
function inlineVerdict(work: RuleSnapshot, m: JsMsg, decidedAt: () => string, config: Config, fallback: string, upTo?: WorkStage): { to: string; body: Uint8Array } {
  const checked = decodeResult(m.data);
  if (!checked.ok || upTo === "decode") return { to: fallback, body: m.data };
  if (upTo === "match") return { to: `${config.TORT_VERDICT_SUBJECT_PREFIX}.${matchResult(work, checked.value).action}`, body: m.data };
  const verdict = buildVerdict(checked.value, matchResult(work, checked.value), work.version, { stream: m.info.stream, seq: m.seq }, decidedAt());
  return { to: `${config.TORT_VERDICT_SUBJECT_PREFIX}.${verdict.action}`, body: encodeVerdict(verdict) };
}

/**
 * The bare loop: consume, publish the same bytes with the same Nats-Msg-Id (js.publish), await the
 * PubAck, ack. Options: tortmatch's work inline, tortmatch's publish instead of the client's.
 */
async function bareLoop(config: Config, o: BareOptions): Promise<{ stop(): Promise<void>; settled: () => number }> {
  const { expected, onSettled, work, upTo } = o;
  await bareTopology(config);
  const { publish, close } = bareLoopPublish(o.ownPublish);
  const consumer = await js.consumers.get(config.TORT_INPUT_STREAM, config.TORT_CONSUMER);
  const messages = await consumer.consume({ max_messages: CONCURRENCY * 2 });
  let inFlight = 0;
  let settled = 0;
  let wake: (() => void) | null = null;
  const subject = `${config.TORT_VERDICT_SUBJECT_PREFIX}.bare`;
  const decidedAt = isoClock(() => new Date()); // as the pipeline makes it
  const loop = (async () => {
    for await (const m of messages) {
      while (inFlight >= CONCURRENCY) await new Promise<void>((r) => (wake = r));
      inFlight++;
      let to = subject;
      let body = m.data;
      if (work !== undefined) ({ to, body } = inlineVerdict(work, m, decidedAt, config, subject, upTo)); // the bare path allocates nothing more
      void publish(to, body, `${m.info.stream}:${m.seq}`).then(() => {
        m.ack();
        inFlight--;
        settled++;
        onSettled?.(settled);
        const w = wake;
        wake = null;
        w?.();
      });
      if (settled >= expected() && inFlight === 0) break;
    }
  })();
  return {
    settled: () => settled,
    async stop() {
      messages.stop();
      await loop.catch(() => {});
      close();
    },
  };
}

/**
 * A service on a connection of its own, as `tortmatch run` has, closed when it stops: services started
 * one after another on one connection would each stay reachable from it (@nats-io/services keeps a
 * reaction on the connection's `closed()` promise), and their snapshots would pile up in this
 * process's heap, slowing its garbage collection for every loop measured after them.
 */
async function startOwnService(config: Config): Promise<RunningService & { close(): Promise<void> }> {
  const own = await connect({ servers: natsUrl, noAsyncTraces: true });
  const database = openRuleDatabase({ url: databaseUrl });
  const service = await startService({ config, log, nc: own, database, pullExpiresMs: 1_000 });
  return Object.assign(service, {
    async close() {
      await service.stop();
      await database.close();
      await own.drain();
    },
  });
}

/**
 * One round's drain rates: over all N results, and over those after the first FIRST settled (start-up
 * excluded); and the CPU a message took over all N, in µs, of this process's main thread and of
 * nats-server (NaN where not measured).
 */
interface Drain {
  readonly all: number;
  readonly steady: number;
  readonly mainCpuUs: number;
  readonly serverCpuUs: number;
}
const FIRST = Math.min(5_000, Math.floor(N / 10));
/** Started when the loop may start; told the settled count as it grows. */
function drainTimer() {
  const main0 = clocks.mainThread();
  const server0 = clocks.natsServer();
  const t0 = performance.now();
  let tFirst = Number.NaN;
  return {
    settled(n: number) {
      if (Number.isNaN(tFirst) && n >= FIRST) tFirst = performance.now();
    },
    end(): Drain {
      const t = performance.now();
      const main = clocks.mainThread();
      const server = clocks.natsServer();
      return {
        all: N / ((t - t0) / 1000),
        steady: (N - FIRST) / ((t - tFirst) / 1000),
        mainCpuUs: main === null || main0 === null ? Number.NaN : (main - main0) / N,
        serverCpuUs: server === null || server0 === null ? Number.NaN : (server - server0) / N,
      };
    },
  };
}

/**
 * The bare loop's publish and ack over tortmatch's pull on credit (src/ingest/pull-messages.ts) with
 * the same limit, instead of consume(): what the credit bound and the pull cost, and nothing else.
 * With `work` and `ownPublish`: tortmatch's pull, its decode, match and encode, and its PubAck inbox,
 * with nothing around them (no rxjs, no settlement steps, no stats or metrics): what tortmatch's own
 * parts allow at most, and so what the pipeline that joins them costs.
 */
async function roundBarePull(o: Pick<BareOptions, "work" | "ownPublish"> = {}): Promise<Drain> {
  const config = freshConfig();
  await publishInputs(nc, config, inputs(N));
  await bareTopology(config);
  const limit = createConcurrencyLimit(CONCURRENCY);
  const budget = createByteBudget(config.TORT_MAX_INFLIGHT_BYTES);
  const subject = `${config.TORT_VERDICT_SUBJECT_PREFIX}.bare`;
  const { publish, close } = bareLoopPublish(o.ownPublish);
  const { work } = o;
  const decidedAt = isoClock(() => new Date());
  let settled = 0;
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  const timer = drainTimer();
  const pull = pullMessages({ nc, stream: config.TORT_INPUT_STREAM, consumer: config.TORT_CONSUMER }, limit, budget, { maxBatch: config.TORT_PULL_BATCH, expiresMs: 1_000, retryDelayMs: 1_000 }, log).subscribe(({ msg, bytes }) => {
    let to = subject;
    let body = msg.data;
    if (work !== undefined) ({ to, body } = inlineVerdict(work, msg, decidedAt, config, subject));
    void publish(to, body, `${msg.info.stream}:${msg.seq}`).then(() => {
      msg.ack();
      limit.release(1);
      budget.release(bytes);
      timer.settled(++settled);
      if (settled >= N) done();
    });
  });
  await finished;
  const rate = timer.end();
  pull.unsubscribe();
  close();
  await removeTopology(nc, config);
  return rate;
}

async function roundTortmatch(): Promise<Drain> {
  const config = freshConfig();
  await publishInputs(nc, config, inputs(N));
  const service = await startOwnService(config);
  await until(() => service.snapshot$.value !== null);
  const timer = drainTimer();
  await until(() => {
    timer.settled(settledOf(service));
    return settledOf(service) >= N;
  });
  const rate = timer.end();
  await service.close();
  await removeTopology(nc, config);
  return rate;
}

async function roundBare(o: Pick<BareOptions, "work" | "upTo" | "ownPublish"> = {}): Promise<Drain> {
  const config = freshConfig();
  await publishInputs(nc, config, inputs(N));
  const timer = drainTimer();
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  const bare = await bareLoop(config, {
    expected: () => N,
    onSettled: (settled) => {
      timer.settled(settled);
      if (settled >= N) done();
    },
    ...o,
  });
  await finished;
  const rate = timer.end();
  await bare.stop();
  await removeTopology(nc, config);
  return rate;
}

/**
 * Latency at a steady input rate: output stored − input stored (server clock), per message, over
 * the `count` messages that follow `warmUp` others (the same for both: a start-up is not a load).
 */
async function latency(kind: "tortmatch" | "bare", warmUp: number, count: number, perSecond: number): Promise<{ p50: number; p99: number; warmUpP99: number }> {
  const config = freshConfig();
  await publishInputs(nc, config, []); // the input stream
  let stop: () => Promise<void>;
  let settled: () => number;
  if (kind === "tortmatch") {
    const service = await startOwnService(config);
    await until(() => service.snapshot$.value !== null);
    stop = () => service.close();
    settled = () => settledOf(service);
  } else {
    const bare = await bareLoop(config, { expected: () => Number.POSITIVE_INFINITY });
    stop = bare.stop;
    settled = bare.settled;
  }
  const subject = config.TORT_INPUT_SUBJECTS.replace(">", "paced");
  const total = warmUp + count;
  const body = inputs(total);
  const t0 = performance.now();
  for (let i = 0; i < total; i++) {
    const due = t0 + (i * 1000) / perSecond;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    // A core publish: the stream stores it all the same (its storage time is the start of the latency),
    // and the generator does not spend the measured process's thread on a request and a PubAck per
    // input (js.publish, ~27 µs each on this host), which the loop measured would then share.
    nc.publish(subject, encoder.encode(body[i]!));
  }
  await until(() => settled() >= total);
  await stop();
  const input = new Map((await readStream(nc, config.TORT_INPUT_STREAM)).map((m: JsMsg) => [m.seq, m.info.timestampNanos]));
  const latencies: number[] = [];
  const warmUpLatencies: number[] = [];
  for (const m of await readStream(nc, config.TORT_VERDICT_STREAM)) {
    const seq = Number(m.headers!.get("Nats-Msg-Id").split(":").pop());
    (seq > warmUp ? latencies : warmUpLatencies).push((m.info.timestampNanos - input.get(seq)!) / 1e6);
  }
  const dead = (await readStream(nc, config.TORT_DEADLETTER_STREAM).catch(() => [])).length;
  await removeTopology(nc, config);
  latencies.sort((a, b) => a - b);
  warmUpLatencies.sort((a, b) => a - b);
  if (latencies.length + warmUpLatencies.length + dead < total) throw new Error(`only ${latencies.length + warmUpLatencies.length} outputs for ${total} inputs`);
  const at = (xs: number[], q: number) => xs[Math.floor(xs.length * q)]!;
  return { p50: at(latencies, 0.5), p99: at(latencies, 0.99), warmUpP99: at(warmUpLatencies, 0.99) };
}

/**
 * What each stage costs per message, µs, measured here on the same inputs, stage by stage: CPU
 * stages in tight loops (decode, match, encode, bookkeeping); the client's share of publish and ack
 * (building and queueing the frames, not the round trip) over a burst of real ones.
 */
async function stageCosts(snapshot: RuleSnapshot): Promise<{ costs: Record<string, number>; clientPublish: number }> {
  const COUNT = 20_000;
  const bodies = inputs(COUNT).map((l) => encoder.encode(l));
  const perMessage = (fn: () => void, n: number) => {
    const times: number[] = [];
    for (let r = 0; r < 5; r++) {
      const t = performance.now();
      fn();
      times.push(((performance.now() - t) * 1000) / n);
    }
    return median(times);
  };
  let sink = 0;
  const decoded: RecognitionResult[] = [];
  for (const b of bodies) {
    const c = decodeResult(b);
    if (c.ok) decoded.push(structuredClone(c.value)); // a copy: see bench/match.ts (kept, the decoder's own objects would get pretenured)
  }
  const decisions = decoded.map((r) => matchResult(snapshot, r));
  const source = { stream: "IN", seq: 1 };
  const encoded: Uint8Array[] = [];
  const costs: Record<string, number> = {
    decode: perMessage(() => bodies.forEach((b) => (sink += decodeResult(b).ok ? 1 : 0)), bodies.length),
    match: perMessage(() => decoded.forEach((r) => (sink += matchResult(snapshot, r).hits.length)), decoded.length),
    encode: perMessage(() => {
      encoded.length = 0;
      const now = new Date().toISOString();
      decoded.forEach((r, i) => encoded.push(encodeVerdict(buildVerdict(r, decisions[i]!, snapshot.version, source, now))));
    }, decoded.length),
  };
  const stats = createServiceStats();
  const metrics = createMetrics({ stats, inFlight: () => 0, limit: () => 64, waiting: () => 0, snapshot: () => snapshot, ruleCacheState: () => "ready", ruleCacheStates: ["ready"], now: Date.now });
  const latencies = createLatencyWindow();
  costs.bookkeeping = perMessage(() => {
    for (let i = 0; i < decoded.length; i++) {
      stats.messageReceived();
      metrics.matched(0.000002);
      metrics.settledAfter(0.004);
      latencies.observe(0.004);
      stats.messageSettled("verdict", "block");
    }
  }, decoded.length);
  // The client's share of a publish, tortmatch's: the call until it returns its promise (headers,
  // frame, queue); and the same for the client's js.publish, which the bare loop uses.
  const config = freshConfig();
  await jsm.streams.add({ name: config.TORT_VERDICT_STREAM, subjects: [`${config.TORT_VERDICT_SUBJECT_PREFIX}.>`] });
  const own = createJetStreamPublish(nc, { timeoutMs: 10_000, log });
  const publishCost = (publish: (i: number) => Promise<unknown>, from: number) => {
    const pending: Promise<unknown>[] = [];
    const t = performance.now();
    for (let i = from; i < from + 2_000; i++) pending.push(publish(i));
    const cost = ((performance.now() - t) * 1000) / 2_000;
    return Promise.all(pending).then(() => cost);
  };
  const subject = `${config.TORT_VERDICT_SUBJECT_PREFIX}.block`;
  costs.publish = await publishCost((i) => own.publish(subject, encoded[i % encoded.length]!, `IN:${i}`), 0);
  const clientPublish = await publishCost((i) => js.publish(subject, encoded[i % encoded.length]!, { msgID: `IN:${i}` }), 2_000);
  own.close();
  // Acks: the same for 2,000 delivered messages.
  await publishInputs(nc, config, inputs(2_000));
  await jsm.consumers.add(config.TORT_INPUT_STREAM, { durable_name: config.TORT_CONSUMER, ack_policy: AckPolicy.Explicit });
  const consumer = await js.consumers.get(config.TORT_INPUT_STREAM, config.TORT_CONSUMER);
  const got: JsMsg[] = [];
  for await (const m of await consumer.fetch({ max_messages: 2_000, expires: 5_000 })) got.push(m);
  const t = performance.now();
  for (const m of got) m.ack();
  costs.settle = ((performance.now() - t) * 1000) / got.length;
  await nc.flush();
  await removeTopology(nc, config);
  if (sink < 0) console.log(sink);
  return { costs, clientPublish };
}

/** The seeded rules, read once: the inline-work loop's and the stage costs' snapshot. */
const workSnapshot = await (async () => {
  const database = openRuleDatabase({ url: databaseUrl });
  try {
    return await createRuleLoader(database).loadFull();
  } finally {
    await database.close();
  }
})();
const ours: Drain[] = [];
const bare: Drain[] = [];
const bareWork: Drain[] = [];
const bareDecode: Drain[] = [];
const bareMatch: Drain[] = [];
const barePull: Drain[] = [];
const bareOwnPublish: Drain[] = [];
const ownParts: Drain[] = [];
for (let r = 0; r < ROUNDS; r++) {
  bare.push(await roundBare());
  ours.push(await roundTortmatch());
  bareWork.push(await roundBare({ work: workSnapshot }));
  bareDecode.push(await roundBare({ work: workSnapshot, upTo: "decode" }));
  bareMatch.push(await roundBare({ work: workSnapshot, upTo: "match" }));
  barePull.push(await roundBarePull());
  bareOwnPublish.push(await roundBare({ ownPublish: true }));
  ownParts.push(await roundBarePull({ work: workSnapshot, ownPublish: true }));
}
const all = (d: Drain[]) => median(d.map((x) => x.all));
const steady = (d: Drain[]) => median(d.map((x) => x.steady));
const mOurs = all(ours);
const mBare = all(bare);
const mBareWork = all(bareWork);
const rate = (x: number) => Math.round(x).toLocaleString("en");
/** A loop's two rates and their ratios to the bare loop's. */
const vsBare = (d: Drain[]) =>
  `${rate(all(d))}/s = ${(all(d) / mBare).toFixed(2)}x the bare loop; after the first ${FIRST.toLocaleString("en")}: ${rate(steady(d))}/s = ${(steady(d) / steady(bare)).toFixed(2)}x`;
console.log(`bench:throughput  ${N.toLocaleString("en")} results, concurrency ${CONCURRENCY}, ${ROUNDS} rounds, medians; each loop starts on the whole backlog`);
console.log(`  bare consume→publish→ack  ${rate(mBare)} msgs/s; after the first ${FIRST.toLocaleString("en")} settled: ${rate(steady(bare))} msgs/s`);
console.log(`  tortmatch end to end      ${vsBare(ours)} (target >= 0.9x)`);
console.log(`  bare loop + tortmatch's decode and validate inline ${vsBare(bareDecode)}`);
console.log(`  bare loop + tortmatch's decode, validate and match inline ${vsBare(bareMatch)}`);
console.log(`  bare loop + tortmatch's decode, match and encode inline ${vsBare(bareWork)} (tortmatch is ${(mOurs / mBareWork).toFixed(2)}x of it)`);
console.log(`  bare loop over tortmatch's pull on credit (limit ${CONCURRENCY}) ${vsBare(barePull)} (tortmatch is ${(mOurs / all(barePull)).toFixed(2)}x of it: the same bound on messages between pull and ack)`);
console.log(`  bare loop publishing with tortmatch's PubAck inbox ${vsBare(bareOwnPublish)} (tortmatch is ${(mOurs / all(bareOwnPublish)).toFixed(2)}x of it)`);
console.log(`  tortmatch's own parts joined bare (its pull on credit, decode, match, encode and PubAck inbox; no rxjs, settlement steps or stats) ${vsBare(ownParts)} (tortmatch is ${(mOurs / all(ownParts)).toFixed(2)}x of it)`);
/** A loop's CPU a message, µs: main thread / nats-server, medians; "n/a" where /proc did not give it. */
const cpuOf = (d: Drain[]) => {
  const us = (xs: number[]) => (xs.some(Number.isNaN) ? "n/a" : median(xs).toFixed(1));
  return `${us(d.map((x) => x.mainCpuUs))} / ${us(d.map((x) => x.serverCpuUs))}`;
};
console.log(
  `  CPU a message, µs, of this process's main thread / of nats-server (medians over each whole drain): bare ${cpuOf(bare)}; ` +
    `+ decode and validate ${cpuOf(bareDecode)}; + match ${cpuOf(bareMatch)}; + encode (the whole work) ${cpuOf(bareWork)}; ` +
    `tortmatch ${cpuOf(ours)} (its service runs on this main thread)`,
);
const { costs, clientPublish } = await stageCosts(workSnapshot);
const perOurs = 1e6 / mOurs;
const perBare = 1e6 / mBare;
console.log(
  `  per message: tortmatch ${perOurs.toFixed(1)} µs, bare ${perBare.toFixed(1)} µs; stages (µs): ` +
    Object.entries(costs).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(", ") +
    ` (decode, match, encode and bookkeeping are tortmatch's own: ${(costs.decode! + costs.match! + costs.encode! + costs.bookkeeping!).toFixed(2)} µs; ` +
    `publish is tortmatch's PubAck inbox, the client's js.publish costs ${clientPublish.toFixed(2)} µs)`,
);
const paced = Math.round(Math.min(mOurs, mBare) / 2);
// The first second at the paced rate, for both: a fresh process runs its first few thousand messages
// through code V8 has not optimised yet (tortmatch's, with its decode, match and rxjs, far more than the
// bare loop's), and a fleet leader publishes its snapshot; that start-up is printed as the warm-up's p99.
const WARM_UP = paced;
const LATENCY_ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const lat = { bare: [] as { p50: number; p99: number; warmUpP99: number }[], tortmatch: [] as { p50: number; p99: number; warmUpP99: number }[] };
for (let r = 0; r < LATENCY_ROUNDS; r++) for (const kind of ["bare", "tortmatch"] as const) lat[kind].push(await latency(kind, WARM_UP, 10_000, paced));
const p99: Record<string, number> = {};
for (const kind of ["bare", "tortmatch"] as const) {
  const l = lat[kind];
  p99[kind] = median(l.map((x) => x.p99));
  console.log(
    `  latency at ${paced.toLocaleString("en")}/s, ${kind.padEnd(9)}  p50 ${median(l.map((x) => x.p50)).toFixed(1)} ms  p99 ${p99[kind]!.toFixed(1)} ms ` +
      `(10,000 after ${WARM_UP.toLocaleString("en")} of warm-up, ${LATENCY_ROUNDS} rounds, medians; p99 of the warm-up ${median(l.map((x) => x.warmUpP99)).toFixed(1)} ms)`,
  );
}
console.log(`  p99 at half load: tortmatch ${(p99.tortmatch! / p99.bare!).toFixed(2)}x the bare loop's (target <= 2x)`);

/** Results/s of K `tortmatch run` processes on one durable consumer: from the first input published to the last verdict stored. */
async function scaleOut(k: number): Promise<number> {
  const env = { ...uniqueNames(), DATABASE_URL: databaseUrl, LOG_LEVEL: "warn", TORT_CONCURRENCY: String(CONCURRENCY) };
  const config = loadConfig(env);
  const ports: number[] = [];
  for (let i = 0; i < k; i++) ports.push(await freePortNumber());
  const bin = fileURLToPath(new URL("../../bin/tortmatch.js", import.meta.url));
  const children = ports.map((port) => spawn(process.execPath, [bin, "run"], { env: { ...process.env, ...env, TORT_OPS_PORT: String(port) }, stdio: ["ignore", "ignore", "inherit"] }));
  const ready = async (port: number) => fetch(`http://127.0.0.1:${port}/readyz`).then((r) => r.status === 200, () => false);
  while (!(await Promise.all(ports.map(ready))).every(Boolean)) await new Promise((r) => setTimeout(r, 50));
  const t = performance.now();
  await publishInputs(nc, config, inputs(N));
  for (;;) {
    const info = await jsm.streams.info(config.TORT_VERDICT_STREAM);
    const dead = await jsm.streams.info(config.TORT_DEADLETTER_STREAM);
    if (info.state.messages + dead.state.messages >= N) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  const rate = N / ((performance.now() - t) / 1000);
  await Promise.all(children.map((c) => new Promise<void>((resolve) => (c.once("exit", () => resolve()), c.kill("SIGTERM")))));
  await removeTopology(nc, config);
  return rate;
}
const scale: string[] = [];
for (const k of [1, 2, 3]) scale.push(`${k}: ${Math.round(await scaleOut(k)).toLocaleString("en")}/s`);
console.log(`  scale-out, K processes on one durable consumer (${N.toLocaleString("en")} results, input published while they run): ${scale.join(", ")} (2 cores: nats-server, the publisher and the instances share them)`);

if (BACKLOG > 0) {
  const env = { ...uniqueNames(), DATABASE_URL: databaseUrl, LOG_LEVEL: "warn" };
  const config = loadConfig(env);
  await publishInputs(nc, config, inputs(BACKLOG));
  const run = await runChild<{ maxRssMb: number; drainSeconds: number; loads: number }>("./service.ts", [], { ...env, EXPECT: String(BACKLOG) });
  await removeTopology(nc, config);
  console.log(
    `  ${BACKLOG.toLocaleString("en")} queued before start: peak RSS ${run.maxRssMb.toFixed(0)} MB (target <= 250 MB), ` +
      `${run.loads} load, drained at ${Math.round(BACKLOG / run.drainSeconds).toLocaleString("en")}/s`,
  );
}
await nc.drain();
