/**
 * bench:adaptive — fixed concurrency limits (8, 64, 512) against `auto` (spec section 13), on the
 * real servers, in three scenarios: (a) NATS on loopback; (b) NATS behind a TCP proxy in this
 * process that delays every chunk 5 ms each way; (c) results of about 200 KB each. Each setting runs
 * in a process of its own (`tortmatch`'s service, compiled), started on a backlog of N results, for
 * its throughput (ready → last settled) and peak RSS; then, started on an empty stream, under a
 * paced load of half the best fixed limit's throughput, for its p99 (input stored → verdict
 * stored, server timestamps, after a warm-up). Rounds interleave the settings; medians of the rounds.
 * Targets per scenario: `auto` at least 0.9x the best fixed limit's throughput, its p99 at most 1.5x
 * that limit's, its peak RSS at most 1.2x; and whether any single fixed limit meets the same bounds
 * in all three scenarios.
 *
 * ADAPTIVE_RESULTS (50,000), ADAPTIVE_LARGE_RESULTS (the 200 KB scenario's N; 50,000),
 * BENCH_ROUNDS (3), ADAPTIVE_SCENARIOS (a,b,c), ADAPTIVE_SETTINGS (8,64,512,auto).
 */
import type { JsMsg } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { readFileSync } from "node:fs";
import { createServer, connect as tcpConnect, type Socket } from "node:net";
import { loadConfig, type Config } from "../src/config.js";
import { decodeResultText } from "../src/ingest/decode-result.js";
import { publishInputs, readStream, removeTopology, uniqueNames } from "../test/support/nats.js";
import { runChild } from "./children/run-child.js";
import { benchDatabaseUrl, median } from "./support.js";

const N = Number(process.env.ADAPTIVE_RESULTS ?? 50_000);
const N_LARGE = Number(process.env.ADAPTIVE_LARGE_RESULTS ?? 50_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const SCENARIOS = (process.env.ADAPTIVE_SCENARIOS ?? "a,b,c").split(",");
const SETTINGS = (process.env.ADAPTIVE_SETTINGS ?? "8,64,512,auto").split(",");
const FIXED = SETTINGS.filter((s) => s !== "auto");
/** One way, ms. */
const PROXY_DELAY_MS = 5;
const LARGE_BYTES = 200 * 1024;
/** The paced run: this long of load, the first WARM_UP_S of it not counted. */
const PACED_S = 12;
const WARM_UP_S = 2;

const natsUrl = process.env.NATS_URL ?? "127.0.0.1:4222";
const nc = await connect({ servers: natsUrl, noAsyncTraces: true });
const encoder = new TextEncoder();
const lines = readFileSync("artifacts/bench-results.ndjson", "utf8").split("\n").filter(Boolean);

type Result = { matches: { assetId: number; startMs: number; endMs: number; score: number }[] };
/** The seeded results that are valid (the file holds broken ones on purpose: a large result built on one would be dead-lettered). */
const parsed = lines.filter((l) => decodeResultText(l).ok).map((l) => JSON.parse(l) as Result);

/** A result of about `bytes`: one of the seeded results, its matches repeated over other seeded results' assets. */
function largeLine(i: number, bytes: number): string {
  const base = parsed[i % parsed.length]!;
  const matches = [...base.matches];
  let size = JSON.stringify(base).length;
  for (let j = 1; size < bytes && matches.length < 10_000; j++) {
    for (const m of parsed[(i + j) % parsed.length]!.matches) {
      const extra = { ...m, startMs: m.startMs + j, endMs: m.endMs + j, score: Math.round(m.score * 1e6) / 1e6 };
      matches.push(extra);
      size += JSON.stringify(extra).length + 1;
    }
  }
  return JSON.stringify({ ...base, matches });
}

/** A TCP proxy to NATS that holds every chunk `delayMs` before passing it on, each way, in order. */
async function delayProxy(targetPort: number, delayMs: number): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const delayed = (from: Socket, to: Socket) => {
    const queue: { due: number; chunk: Buffer }[] = [];
    let timer: ReturnType<typeof setTimeout> | undefined;
    const flush = () => {
      timer = undefined;
      const now = performance.now();
      while (queue.length > 0 && queue[0]!.due <= now) to.write(queue.shift()!.chunk);
      if (queue.length > 0) timer = setTimeout(flush, queue[0]!.due - now);
    };
    from.on("data", (chunk: Buffer) => {
      queue.push({ due: performance.now() + delayMs, chunk });
      timer ??= setTimeout(flush, delayMs);
    });
  };
  const server = createServer((client) => {
    const upstream = tcpConnect(targetPort, "127.0.0.1");
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.setNoDelay(true);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => s.destroy());
    }
    delayed(client, upstream);
    delayed(upstream, client);
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as { port: number }).port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

interface ChildReport {
  settled: number;
  maxRssMb: number;
  drainSeconds: number;
  maxInFlight: number;
  limit: { min: number; max: number; last: number; mode: string; minRttMs: number | null };
}

/** The service in a process of its own (compiled when built), until EXPECT results are settled; `onReady` once it has its snapshot. */
const runService = (env: Record<string, string>, expect: number, onReady: () => void = () => {}) =>
  runChild<ChildReport>("./service.ts", [], { ...env, EXPECT: String(expect) }, (line) => line === '{"ready":true}' && onReady());

interface Scenario {
  readonly name: string;
  readonly results: number;
  readonly body: (i: number) => string;
  /** NATS as the service sees it. */
  readonly serviceNatsUrl: string;
  /** Built results, checked valid before the run (the seeded lines of the other scenarios hold their share of broken ones, as production does). */
  readonly allValid?: boolean;
}

const settingEnv = (setting: string, config: Record<string, string>, scenario: Scenario) => ({
  ...config,
  LOG_LEVEL: "error",
  DATABASE_URL: benchDatabaseUrl,
  NATS_URL: scenario.serviceNatsUrl,
  TORT_CONCURRENCY: setting,
  // 512 asks for more than the default max_ack_pending allows across a fleet; one instance here.
  TORT_MAX_ACK_PENDING: "20000",
});

/** Throughput and peak RSS of one setting on a backlog of the scenario's results. */
async function drainRun(scenario: Scenario, setting: string, bodies: Uint8Array[]) {
  const names = uniqueNames();
  const config = loadConfig({ ...names, DATABASE_URL: benchDatabaseUrl });
  await publishInputs(nc, config, bodies);
  const report = await runService(settingEnv(setting, names, scenario), bodies.length);
  await removeTopology(nc, config);
  return { throughput: report.settled / report.drainSeconds, rssMb: report.maxRssMb, limit: report.limit };
}

/** p99 of one setting under a paced load of `perSecond`, input stored → verdict stored. */
async function pacedRun(scenario: Scenario, setting: string, perSecond: number, bodies: Uint8Array[]) {
  const names = uniqueNames();
  const config: Config = loadConfig({ ...names, DATABASE_URL: benchDatabaseUrl });
  await publishInputs(nc, config, []); // the input stream
  const total = Math.min(bodies.length, Math.round(perSecond * PACED_S));
  const warmUp = Math.min(Math.round(perSecond * WARM_UP_S), Math.floor(total / 5));
  let ready!: () => void;
  const isReady = new Promise<void>((r) => (ready = r));
  const done = runService(settingEnv(setting, names, scenario), total, () => ready());
  await Promise.race([isReady, done]);
  const subject = config.TORT_INPUT_SUBJECTS.replace(">", "paced");
  const t0 = performance.now();
  for (let i = 0; i < total; i++) {
    const wait = t0 + (i * 1000) / perSecond - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    nc.publish(subject, bodies[i]!);
  }
  const report = await done;
  const input = new Map((await readStream(nc, config.TORT_INPUT_STREAM)).map((m: JsMsg) => [m.seq, m.info.timestampNanos]));
  const latencies: number[] = [];
  for (const m of await readStream(nc, config.TORT_VERDICT_STREAM)) {
    const seq = Number(m.headers!.get("Nats-Msg-Id").split(":").pop());
    if (seq > warmUp) latencies.push((m.info.timestampNanos - input.get(seq)!) / 1e6);
  }
  const dead = (await readStream(nc, config.TORT_DEADLETTER_STREAM).catch(() => [])).length;
  await removeTopology(nc, config);
  if (latencies.length === 0) throw new Error(`paced run of ${setting}: no verdict after the warm-up (${total} published, ${report.settled} settled, ${dead} dead letters)`);
  latencies.sort((a, b) => a - b);
  return { p99: latencies[Math.floor(latencies.length * 0.99)] ?? Number.NaN, rssMb: report.maxRssMb };
}

interface Row {
  setting: string;
  throughput: number;
  rssMb: number;
  p99: number | null;
  limits: string;
}

const fmt = (x: number) => Math.round(x).toLocaleString("en");

async function runScenario(scenario: Scenario): Promise<Row[]> {
  const bodies = Array.from({ length: scenario.results }, (_, i) => encoder.encode(scenario.body(i)));
  const invalid = scenario.allValid ? bodies.filter((b) => !decodeResultText(new TextDecoder().decode(b)).ok).length : 0;
  if (invalid > 0) throw new Error(`${invalid} of the scenario's results are invalid: the benchmark measures matching, not dead letters`);
  const size = bodies.reduce((s, b) => s + b.length, 0) / bodies.length;
  console.log(`\n(${scenario.name}) ${fmt(scenario.results)} results of ${fmt(size)} bytes on average; settings ${SETTINGS.join(", ")}; ${ROUNDS} rounds, interleaved`);
  const drains = new Map<string, Awaited<ReturnType<typeof drainRun>>[]>(SETTINGS.map((s) => [s, []]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const setting of round % 2 === 0 ? SETTINGS : [...SETTINGS].reverse()) drains.get(setting)!.push(await drainRun(scenario, setting, bodies));
  }
  const throughput = (s: string) => median(drains.get(s)!.map((d) => d.throughput));
  const best = FIXED.reduce((a, b) => (throughput(b) > throughput(a) ? b : a));
  const perSecond = Math.round(throughput(best) / 2);
  const paced = new Map<string, number[]>(SETTINGS.map((s) => [s, []]));
  const carries = (s: string) => throughput(s) >= perSecond * 1.05;
  for (let round = 0; round < ROUNDS; round++) {
    for (const setting of SETTINGS.filter(carries)) paced.get(setting)!.push((await pacedRun(scenario, setting, perSecond, bodies)).p99);
  }
  console.log(`  paced load: ${fmt(perSecond)}/s (half of the best fixed limit's, ${best}), ${PACED_S} s, the first ${WARM_UP_S} s not counted`);
  const rows: Row[] = SETTINGS.map((setting) => {
    const d = drains.get(setting)!;
    const autoLimits = d.map((x) => `${x.limit.min}..${x.limit.max} (last ${x.limit.last}${x.limit.minRttMs === null ? "" : `, min rtt ${x.limit.minRttMs.toFixed(2)} ms`})`);
    return {
      setting,
      throughput: throughput(setting),
      rssMb: median(d.map((x) => x.rssMb)),
      p99: carries(setting) ? median(paced.get(setting)!) : null,
      limits: setting === "auto" ? ` limit used ${autoLimits.join("; ")}` : "",
    };
  });
  for (const r of rows) {
    const p99 = r.p99 === null ? `cannot carry ${fmt(perSecond)}/s` : `${r.p99.toFixed(1)} ms`;
    console.log(`  ${r.setting.padStart(4)}  ${fmt(r.throughput).padStart(7)}/s  p99 at half load ${p99.padStart(10)}  peak RSS ${r.rssMb.toFixed(0)} MB${r.limits}`);
  }
  return rows;
}

/** Whether `row` meets the targets against the scenario's best fixed limit. */
function meets(rows: Row[], row: Row): { ok: boolean; text: string } {
  const fixed = rows.filter((r) => r.setting !== "auto");
  const best = fixed.reduce((a, b) => (b.throughput > a.throughput ? b : a));
  const t = row.throughput / best.throughput;
  const p = row.p99 === null || best.p99 === null ? Number.POSITIVE_INFINITY : row.p99 / best.p99;
  const m = row.rssMb / best.rssMb;
  return {
    ok: t >= 0.9 && p <= 1.5 && m <= 1.2,
    text: `throughput ${t.toFixed(2)}x (>= 0.9x), p99 ${Number.isFinite(p) ? p.toFixed(2) : "∞"}x (<= 1.5x), peak RSS ${m.toFixed(2)}x (<= 1.2x) of the best fixed (${best.setting})`,
  };
}

const proxy = await delayProxy(Number(new URL(`nats://${natsUrl.replace(/^nats:\/\//, "")}`).port || 4222), PROXY_DELAY_MS);
const scenarios: Record<string, Scenario> = {
  a: { name: "a: NATS on loopback", results: N, body: (i) => lines[i % lines.length]!, serviceNatsUrl: natsUrl },
  b: { name: `b: NATS behind a TCP proxy adding ${PROXY_DELAY_MS} ms each way`, results: N, body: (i) => lines[i % lines.length]!, serviceNatsUrl: `127.0.0.1:${proxy.port}` },
  c: { name: `c: results of about ${LARGE_BYTES / 1024} KB`, results: N_LARGE, body: (i) => largeLine(i, LARGE_BYTES), serviceNatsUrl: natsUrl, allValid: true },
};
console.log(`bench:adaptive — fixed limits ${FIXED.join(", ")} against auto; throughput (ready → last settled, on a backlog), p99 at half of the best fixed throughput, peak RSS; medians of ${ROUNDS}`);
const results: Record<string, Row[]> = {};
for (const key of SCENARIOS) results[key] = await runScenario(scenarios[key]!);
await proxy.close();

console.log("\nTargets (per scenario: auto against the best fixed limit):");
let autoEverywhere = SETTINGS.includes("auto");
for (const key of SCENARIOS) {
  const rows = results[key]!;
  const auto = rows.find((r) => r.setting === "auto");
  if (!auto) continue;
  const verdict = meets(rows, auto);
  autoEverywhere &&= verdict.ok;
  console.log(`  (${key}) auto: ${verdict.ok ? "MET" : "NOT MET"} — ${verdict.text}`);
}
const everywhere = FIXED.filter((s) => SCENARIOS.every((key) => meets(results[key]!, results[key]!.find((r) => r.setting === s)!).ok));
console.log(
  everywhere.length === 0
    ? `  no single fixed limit (${FIXED.join(", ")}) meets the same bounds in all of ${SCENARIOS.join(", ")}`
    : `  fixed limit(s) meeting the same bounds in all of ${SCENARIOS.join(", ")}: ${everywhere.join(", ")} — a fixed default suffices there`,
);
console.log(`  auto meets its targets in every scenario: ${autoEverywhere ? "yes" : "no"}`);
await nc.drain();
