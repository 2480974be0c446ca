/**
 * bench:fleet — K = 1, 4, 8, 16 instances of `tortmatch run` (each a process
 * of its own) started together on the seeded rules, as a fleet (TORT_FLEET=on:
 * one database read per version) next to K independent instances (off: each
 * reads the tables itself), in the same run, rounds interleaved. Per K and
 * mode: rows read from MariaDB (its global Rows_read counter, so nothing else
 * may use the server meanwhile), the time until every instance is ready
 * (/readyz), and the peak RSS per instance (VmHWM). Medians of BENCH_ROUNDS.
 * Targets (issue #10): rows read at most 1.1x one load at every K; all ready
 * within 2x a single instance's time at K <= 8.
 */
import { jetstreamManager } from "@nats-io/jetstream";
import { Objm } from "@nats-io/obj";
import { connect } from "@nats-io/transport-node";
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import mysql from "mysql2/promise";
import { benchDatabaseUrl, median } from "./support.js";
import { loadConfig } from "../src/config.js";
import { freePort } from "../test/support/nats-server.js";
import { removeTopology, uniqueNames } from "../test/support/nats.js";
import { decodeSnapshot, encodeSnapshot } from "../src/fleet/snapshot-codec.js";
import { openSnapshotStore } from "../src/fleet/snapshot-store.js";
import { openRuleDatabase } from "../src/rules/database.js";
import { createRuleLoader } from "../src/rules/load-rules.js";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const KS = (process.env.BENCH_FLEET_KS ?? "1,4,8,16").split(",").map(Number);
const NATS_URL = process.env.NATS_URL ?? "nats://127.0.0.1:4222";
const BIN = fileURLToPath(new URL("../../bin/tortmatch.js", import.meta.url));

const admin = await mysql.createConnection({ uri: benchDatabaseUrl });
const nc = await connect({ servers: NATS_URL, name: "bench-fleet" });
const jsm = await jetstreamManager(nc);

async function rowsReadNow(): Promise<number> {
  const [rows] = await admin.query("SHOW GLOBAL STATUS LIKE 'Rows_read'");
  return Number((rows as { Value: string }[])[0]!.Value);
}
const [[tableRows]] = (await admin.query(
  "SELECT (SELECT COUNT(*) FROM video_tort_rule) + (SELECT COUNT(*) FROM video_tort_rule_property) AS n",
)) as unknown as [[{ n: number }]];
const ONE_LOAD = Number(tableRows.n);

/**
 * The snapshot's compact form next to a database load, in this process: bytes, encode and decode
 * (decode includes compiling the index), and its round trip through the Object Store.
 */
{
  const database = openRuleDatabase({ url: benchDatabaseUrl, connectionLimit: 2 });
  const loader = createRuleLoader(database);
  const bucket = uniqueNames().TORT_SNAPSHOT_BUCKET!;
  const store = await openSnapshotStore(nc, bucket, { replicas: 1 });
  const objects = await new Objm(nc).open(bucket);
  const t = { load: [] as number[], encode: [] as number[], decode: [] as number[], put: [] as number[], get: [] as number[] };
  let bytes = 0;
  for (let round = 0; round < 5; round++) {
    let s = performance.now();
    const snapshot = await loader.loadFull();
    t.load.push(performance.now() - s);
    s = performance.now();
    const encoded = await encodeSnapshot(snapshot, { level: 1 });
    t.encode.push(performance.now() - s);
    bytes = encoded.length;
    s = performance.now();
    await decodeSnapshot(encoded);
    t.decode.push(performance.now() - s);
    await objects.delete(snapshot.version).catch(() => {}); // the store keeps a version it already has
    s = performance.now();
    await store.put(snapshot, "bench", "bench"); // encodes again, then puts
    t.put.push(performance.now() - s);
    s = performance.now();
    await store.get(snapshot.version, "bench"); // gets, checks and decodes
    t.get.push(performance.now() - s);
  }
  await database.close();
  await jsm.streams.delete(`OBJ_${bucket}`).catch(() => {});
  const ms = (xs: number[]) => `${median(xs).toFixed(0)} ms`;
  console.log(
    `bench:fleet  snapshot of ${ONE_LOAD} rows: ${(bytes / 2 ** 20).toFixed(2)} MB encoded; encode ${ms(t.encode)}, decode + compile ${ms(t.decode)}; ` +
      `object store put (with encode) ${ms(t.put)}, get (with check and decode) ${ms(t.get)}; database load ${ms(t.load)} (5 rounds, medians)`,
  );
}

/** Peak resident set of a live process, bytes (Linux VmHWM). */
function peakRss(pid: number): number {
  const m = readFileSync(`/proc/${pid}/status`, "utf8").match(/^VmHWM:\s+(\d+) kB/m);
  return m ? Number(m[1]) * 1024 : Number.NaN;
}

async function answers(port: number, path: "healthz" | "readyz"): Promise<boolean> {
  try {
    return (await fetch(`http://127.0.0.1:${port}/${path}`)).status === 200;
  } catch {
    return false;
  }
}

interface Round {
  rowsRead: number;
  readyMs: number;
  /** Longest time from an instance being up (/healthz: connected, topology in place) to ready (rules served). */
  rulesMs: number;
  peakRssBytes: number;
}

async function startFleet(k: number, fleet: boolean): Promise<Round> {
  // Names of its own, as every test and benchmark uses (test/support): streams, consumer, buckets.
  const names = uniqueNames();
  const ports = await Promise.all(Array.from({ length: k }, freePort));
  const before = await rowsReadNow();
  const started = performance.now();
  const children: ChildProcess[] = ports.map((port) =>
    spawn(process.execPath, [BIN, "run"], {
      env: { ...process.env, ...names, DATABASE_URL: benchDatabaseUrl, NATS_URL, TORT_FLEET: fleet ? "on" : "off", TORT_OPS_PORT: String(port), LOG_LEVEL: "warn", TORT_REFRESH_INTERVAL_MS: "0" },
      stdio: ["ignore", "ignore", "inherit"],
    }),
  );
  const readyAt: number[] = ports.map(() => Number.NaN);
  const aliveAt: number[] = ports.map(() => Number.NaN);
  const deadline = Date.now() + 180_000;
  while (readyAt.some(Number.isNaN)) {
    if (Date.now() > deadline) throw new Error(`K=${k} ${fleet ? "fleet" : "independent"}: not all ready after 180 s`);
    await Promise.all(
      ports.map(async (port, i) => {
        if (Number.isNaN(aliveAt[i]!) && (await answers(port, "healthz"))) aliveAt[i] = performance.now() - started;
        if (!Number.isNaN(aliveAt[i]!) && Number.isNaN(readyAt[i]!) && (await answers(port, "readyz"))) readyAt[i] = performance.now() - started;
      }),
    );
    await new Promise((r) => setTimeout(r, 20));
  }
  const rowsRead = (await rowsReadNow()) - before;
  const peaks = children.map((c) => peakRss(c.pid!));
  await Promise.all(
    children.map(
      (c) =>
        new Promise<void>((resolve) => {
          c.once("exit", () => resolve());
          c.kill("SIGTERM");
        }),
    ),
  );
  await removeTopology(nc, loadConfig({ ...names, DATABASE_URL: benchDatabaseUrl }));
  return { rowsRead, readyMs: Math.max(...readyAt), rulesMs: Math.max(...readyAt.map((r, i) => r - aliveAt[i]!)), peakRssBytes: Math.max(...peaks) };
}

const results = new Map<string, Round[]>();
for (let round = 0; round < ROUNDS; round++) {
  for (const k of KS) {
    const order = round % 2 === 0 ? [true, false] : [false, true];
    for (const fleet of order) {
      const key = `${k}/${fleet ? "fleet" : "independent"}`;
      const r = await startFleet(k, fleet);
      results.set(key, [...(results.get(key) ?? []), r]);
      process.stderr.write(`round ${round + 1}/${ROUNDS} K=${k} ${fleet ? "fleet" : "independent"}: ${(r.rowsRead / ONE_LOAD).toFixed(2)}x rows, ready ${Math.round(r.readyMs)} ms\n`);
    }
  }
}
await nc.drain();
await admin.end();

const med = (key: string, pick: (r: Round) => number) => median(results.get(key)!.map(pick));
const single = med("1/fleet", (r) => r.readyMs);
console.log(`bench:fleet  one load = ${ONE_LOAD} rows; K instances started together; ${ROUNDS} rounds, medians`);
console.log(`  K   mode          rows read (x one load)   all ready (ms, x one instance)   up -> ready, slowest (ms)   peak RSS per instance`);
for (const k of KS) {
  for (const mode of ["fleet", "independent"]) {
    const key = `${k}/${mode}`;
    const rows = med(key, (r) => r.rowsRead);
    const ready = med(key, (r) => r.readyMs);
    const rss = med(key, (r) => r.peakRssBytes);
    const rules = med(key, (r) => r.rulesMs);
    console.log(
      `  ${String(k).padStart(2)}  ${mode.padEnd(12)}  ${String(rows).padStart(9)} (${(rows / ONE_LOAD).toFixed(2)}x)${" ".repeat(7)}${String(Math.round(ready)).padStart(6)} (${(ready / single).toFixed(2)}x)${" ".repeat(18)}${String(Math.round(rules)).padStart(6)}${" ".repeat(20)}${(rss / 2 ** 20).toFixed(0)} MB`,
    );
  }
}
const worstRows = Math.max(...KS.map((k) => med(`${k}/fleet`, (r) => r.rowsRead) / ONE_LOAD));
const worstReady = Math.max(...KS.filter((k) => k <= 8).map((k) => med(`${k}/fleet`, (r) => r.readyMs) / single));
console.log(`  fleet: worst rows read ${worstRows.toFixed(2)}x one load (target <= 1.10x); worst all-ready at K <= 8 ${worstReady.toFixed(2)}x one instance (target <= 2x)`);
