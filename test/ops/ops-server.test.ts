import type { NatsConnection } from "@nats-io/transport-node";
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync } from "node:fs";
import mysql from "mysql2/promise";
import { chromium, type Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../support/nats-server.js";
import type { Config } from "../../src/config.js";
import { CLI_ARGS } from "../support/cli.js";
import { TEST_SERVER_URL, type TestDatabase } from "../support/database.js";
import { connectTest, eventually, publishInputs, removeTopology, testConfig, uniqueNames } from "../support/nats.js";
import { resultLines, seededDatabase } from "../support/service.js";
import { createTcpProxy, type TcpProxy } from "../support/tcp-proxy.js";
import { ruleCacheMachine } from "../../machines/rule-cache.machine.js";

const DB_PASSWORD = `Db-${randomBytes(6).toString("hex")}`;
const NATS_PASSWORD = `Nats-${randomBytes(6).toString("hex")}`;
const dbUser = `tort_${randomBytes(3).toString("hex")}`;
let db: TestDatabase;
let nc: NatsConnection;
let proxy: TcpProxy;
let config: Config;
let child: ChildProcess;
let log = "";
let opsUrl = "";

/** Debian's Chromium, headless, with nothing that reaches for the network on its own. */
const launchChromium = () =>
  chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });


beforeAll(async () => {
  db = await seededDatabase();
  nc = await connectTest();
  // A real MySQL user with a password, reached through a proxy the test can take down.
  const admin = await mysql.createConnection({ uri: TEST_SERVER_URL });
  await admin.query(`CREATE USER '${dbUser}'@'%' IDENTIFIED BY '${DB_PASSWORD}'`);
  await admin.query(`GRANT SELECT ON \`${db.name}\`.* TO '${dbUser}'@'%'`);
  await admin.end();
  proxy = await createTcpProxy(Number(new URL(db.url).port || 3306));
  const url = new URL(db.url);
  url.username = dbUser;
  url.password = DB_PASSWORD;
  url.port = String(proxy.port);
  const port = await freePort();
  const env = {
    ...uniqueNames(),
    DATABASE_URL: url.toString(),
    NATS_USER: "tortmatch",
    NATS_PASSWORD,
    LOG_LEVEL: "debug",
    TORT_CHART_SAMPLE_MS: "250",
    TORT_OPS_PORT: String(port),
    TORT_RETRY_BASE_MS: "200",
    TORT_RETRY_MAX_MS: "500",
  };
  config = testConfig(url.toString(), env);
  opsUrl = `http://127.0.0.1:${port}/`;
  // The database is down at start: alive, not ready.
  child = spawn(process.execPath, [...CLI_ARGS, "run"], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  child.stdout!.on("data", (d) => (log += d));
  child.stderr!.on("data", (d) => (log += d));
});

afterAll(async () => {
  child?.kill("SIGTERM");
  await new Promise((r) => child?.once("exit", r));
  await proxy?.down();
  await removeTopology(nc, config).catch(() => {});
  const admin = await mysql.createConnection({ uri: TEST_SERVER_URL });
  await admin.query(`DROP USER IF EXISTS '${dbUser}'@'%'`);
  await admin.end();
  await nc?.drain();
  await db?.drop();
});

const get = async (path: string) => {
  const res = await fetch(new URL(path, opsUrl));
  return { status: res.status, text: await res.text() };
};

describe("ops endpoints of a running service", () => {
  it("is alive but not ready while the first load fails, then ready; metrics say what happened", async () => {
    const alive = await eventually(() => get("healthz").catch(() => null), "ops server up");
    expect(alive!.status).toBe(200);
    await eventually(async () => (await get("status.json")).text.includes('"attempt":2'), "failing loads");
    const notReady = await get("readyz");
    expect(notReady.status).toBe(503);
    expect(JSON.parse(notReady.text)).toMatchObject({ ready: false, snapshotLoaded: false, natsConnected: true });

    await proxy.up();
    await eventually(async () => (await get("readyz")).status === 200, "ready");
    const lines = resultLines(200, 0.05);
    await publishInputs(nc, config, lines);
    await eventually(async () => /tortmatch_messages_total\{outcome="verdict"\} \d+/.test((await get("metrics")).text), "verdicts counted");
    await eventually(async () => {
      const m = (await get("metrics")).text;
      const n = (re: RegExp) => Number(m.match(re)?.[1] ?? 0);
      return n(/tortmatch_messages_total\{outcome="verdict"\} (\d+)/) + n(/tortmatch_messages_total\{outcome="dead-letter"\} (\d+)/) === lines.length;
    }, "all messages counted");
    const metrics = (await get("metrics")).text;
    for (const name of [
      "tortmatch_verdicts_total", "tortmatch_match_seconds_bucket", "tortmatch_end_to_end_seconds_bucket",
      'tortmatch_rule_loads_total{kind="full",result="error"}', 'tortmatch_rule_loads_total{kind="full",result="ok"} 1',
      "tortmatch_rule_load_seconds_bucket", "tortmatch_snapshot_age_seconds", 'tortmatch_snapshot_rows{kind="rules"}',
      'tortmatch_skipped_rows{table="video_tort_rule"}', "tortmatch_in_flight 0", "tortmatch_concurrency_adaptive 1", "tortmatch_waiting 0",
      'tortmatch_rule_cache_state{state="ready"} 1', 'tortmatch_rule_cache_state{state="retrying"} 0',
    ]) expect(metrics).toContain(name);

    const status = JSON.parse((await get("status.json")).text);
    expect(status).toMatchObject({ ready: true, ruleCache: { state: "ready", loads: expect.any(Number) }, flow: { limit: expect.any(Number), concurrency: { mode: "auto", min: 4, max: 1024 } } });
    expect(status.recent.errors.length).toBeGreaterThan(0);
    expect(status.recent.transitions.map((t: { state: string }) => t.state)).toEqual(expect.arrayContaining(["loading", "retrying", "ready"]));
  });

  it("never shows a secret: not in logs, errors, status, metrics or readiness", async () => {
    const everything = [log, (await get("status.json")).text, (await get("metrics")).text, (await get("readyz")).text].join("\n");
    expect(log).toContain("ECONNREFUSED"); // the failures were logged…
    expect(log).toContain(dbUser); // …naming the user…
    expect(everything).not.toContain(DB_PASSWORD); // …never the passwords
    expect(everything).not.toContain(NATS_PASSWORD);
    expect(JSON.parse((await get("status.json")).text).config).toMatchObject({ NATS_PASSWORD: "***", DATABASE_URL: expect.stringContaining(":***@") });
  });

  it("serves a live status page: the state chart with the current state, and updates without reloading", async () => {
    let browser: Browser | undefined;
    try {
      browser = await launchChromium();
      const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
      await page.goto(opsUrl);
      await page.waitForSelector("#state-ready.current");
      expect(await page.textContent("#ready")).toBe("ready");
      expect(await page.locator(".state").count()).toBe(Object.keys(ruleCacheMachine.config.states!).length);
      expect(await page.textContent("#live")).toBe("live");
      const before = Number(await page.textContent("#received"));
      await publishInputs(nc, config, resultLines(50));
      await page.waitForFunction(`Number(document.querySelector("#received").textContent) >= ${before + 50}`, undefined, { timeout: 15_000 });
      expect(await page.textContent("#transitions")).toContain("ready");
      // The fleet card: this instance (it leads its own fleet) and the announced version it serves.
      await page.waitForFunction(`document.querySelector("#fleet")?.textContent.includes("leader")`, undefined, { timeout: 15_000 });
      await page.waitForFunction(`document.querySelectorAll("#instances tr").length >= 2`, undefined, { timeout: 15_000 });
      // The charts: points in each, and a refresh shows up as a mark on the time axis.
      const points = (id: string) => `(document.querySelector("#${id} polyline")?.getAttribute("points") ?? "").split(" ").filter(Boolean).length`;
      for (const id of ["c-rate", "c-lag", "c-flight", "c-memory"]) await page.waitForFunction(`${points(id)} >= 3`, undefined, { timeout: 15_000 });
      await page.waitForFunction(`${points("c-latency")} >= 1`, undefined, { timeout: 15_000 }); // intervals that settled something
      await page.waitForFunction(`(document.querySelector('#c-memory polyline[data-series="snapshotMb"]')?.getAttribute("points") ?? "").length > 0`, undefined, { timeout: 15_000 });
      const marks = await page.locator("#c-rate .mark").count();
      nc.publish(config.TORT_RULES_CHANGED_SUBJECT);
      await page.waitForFunction(`document.querySelectorAll("#c-rate .mark").length > ${marks}`, undefined, { timeout: 15_000 });
      mkdirSync("artifacts", { recursive: true });
      await page.screenshot({ path: "artifacts/status-page.png", fullPage: true });
    } finally {
      await browser?.close();
    }
  });

  it("clips nothing at 1100 and 1440 px: no state-chart label over a box, another label or the chart's edge; no card overflowing; fleet table headers on one line", async () => {
    let browser: Browser | undefined;
    try {
      browser = await launchChromium();
      for (const width of [1100, 1440]) {
        const page = await browser.newPage({ viewport: { width, height: 900 } });
        await page.goto(opsUrl);
        await page.waitForSelector("#state-ready.current");
        await page.waitForFunction(`document.querySelectorAll("#instances tr").length >= 2`, undefined, { timeout: 15_000 });
        // Run in the page (plain JS: the tests are typechecked without the DOM's types).
        const problems = (await page.evaluate(`(() => {
          const found = [];
          const box = (e) => e.getBoundingClientRect();
          const overlap = (a, b) => a.left < b.right - 0.5 && b.left < a.right - 0.5 && a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5;
          const chart = box(document.getElementById("chart"));
          const labels = [...document.querySelectorAll("#chart text:not(.state text)")];
          const states = [...document.querySelectorAll("#chart .state rect")];
          for (const l of labels) {
            const b = box(l);
            const name = 'label "' + l.textContent + '"';
            if (b.left < chart.left || b.right > chart.right || b.top < chart.top || b.bottom > chart.bottom) found.push(name + " leaves the chart");
            for (const s of states) if (overlap(b, box(s))) found.push(name + " covers the box of " + s.parentElement.id);
            for (const o of labels) if (o !== l && overlap(b, box(o))) found.push(name + ' overlaps "' + o.textContent + '"');
          }
          for (const s of states) {
            const b = box(s), t = box(s.parentElement.querySelector("text"));
            if (b.left < chart.left || b.right > chart.right || b.bottom > chart.bottom) found.push(s.parentElement.id + " leaves the chart");
            if (t.left < b.left || t.right > b.right) found.push(s.parentElement.id + "'s name leaves its box");
          }
          for (const card of document.querySelectorAll(".card")) if (card.scrollWidth > card.clientWidth + 1) found.push("a card overflows: " + card.textContent.slice(0, 40));
          for (const td of document.querySelectorAll("#instances tr:first-child td")) {
            const range = document.createRange();
            range.selectNodeContents(td);
            if (range.getClientRects().length > 1) found.push('fleet header "' + td.textContent + '" breaks over lines');
          }
          return found;
        })()`)) as string[];
        expect(problems, `at ${width} px`).toEqual([]);
        await page.close();
      }
    } finally {
      await browser?.close();
    }
  });
});
