import { networkInterfaces } from "node:os";
import { connect as tcpConnect } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { createActor, fromPromise } from "xstate";
import { ruleCacheMachine, type LoadRulesInput } from "../../machines/rule-cache.machine.js";
import { createRuleTableBuilder } from "../../src/match/rule-table.js";
import { compileSnapshot, type RuleSnapshot } from "../../src/match/snapshot.js";
import { INSPECTOR_MAX_PAYLOAD, INSPECTOR_REPLAY_BYTES, startInspector, type InspectorBridge } from "../../src/ops/inspector.js";
import { toPropertyRow, toRuleRow } from "../fixtures/rows.js";
import { exampleProperties, exampleRules } from "../fixtures/spec-examples.js";
import { eventually } from "../support/nats.js";

let bridge: InspectorBridge | undefined;
afterEach(async () => {
  await bridge?.close();
  bridge = undefined;
});

function exampleSnapshot(): RuleSnapshot {
  const b = createRuleTableBuilder();
  exampleRules.forEach((r) => b.applyRule(toRuleRow(r)));
  exampleProperties.forEach((p) => b.applyProperty(toPropertyRow(p)));
  return compileSnapshot(b.freeze(), { loadKind: "full", loadedAt: new Date().toISOString() });
}

/** A rule cache, inspected by `bridge`, taken through load → ready → refresh → ready with `snapshot`. */
async function loadAndRefresh(snapshot: RuleSnapshot, bridge: InspectorBridge) {
  const actor = createActor(
    ruleCacheMachine.provide({ actors: { loadRules: fromPromise<RuleSnapshot, LoadRulesInput>(async () => snapshot) } }),
    { input: { refreshIntervalMs: 0, fullReloadEvery: 10, retryBaseMs: 10, retryMaxMs: 100, minRefreshGapMs: 0 }, inspect: bridge.inspect },
  );
  actor.start();
  actor.send({ type: "START" });
  await eventually(() => actor.getSnapshot().value === "ready", "ready");
  actor.send({ type: "REFRESH", reason: "notice" });
  await eventually(() => actor.getSnapshot().context.loads === 2 && actor.getSnapshot().value === "ready", "ready again");
  return actor;
}

describe("Stately inspector bridge", () => {
  it("relays a load → ready → refreshing → ready cycle in the inspector's wire format, every state included", async () => {
    bridge = await startInspector({ port: 0 });
    expect(bridge.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const received: { type: string; snapshot?: { value?: unknown; context?: Record<string, unknown> } }[] = [];
    const browser = new WebSocket(bridge.url.replace("http", "ws"));
    browser.on("message", (data) => received.push(JSON.parse(String(data))));
    await new Promise((resolve) => browser.once("open", resolve));

    const snapshot = exampleSnapshot();
    const actor = await loadAndRefresh(snapshot, bridge);

    // The machine's own snapshots (its load actors' snapshots have no state value).
    const states = () => received.filter((e) => e.type === "@xstate.snapshot" && e.snapshot?.value !== undefined).map((e) => e.snapshot!.value);
    await eventually(() => states().filter((v) => v === "ready").length >= 2, "both ready snapshots relayed");
    const types = new Set(received.map((e) => e.type));
    expect([...types]).toEqual(expect.arrayContaining(["@xstate.actor", "@xstate.event", "@xstate.snapshot"]));
    expect(states()).toEqual(expect.arrayContaining(["idle", "loading", "ready", "refreshing"]));
    const order = states().filter((v, i, all) => v !== all[i - 1]);
    expect(order.join(" → ")).toContain("loading → ready → refreshing → ready");
    // The multi-MB snapshot never travels: only its version and counts.
    const last = received.filter((e) => e.type === "@xstate.snapshot" && e.snapshot?.value !== undefined).pop()!;
    expect(last.snapshot!.context!.snapshot).toEqual({ version: snapshot.version, counts: snapshot.counts });
    browser.close();
    actor.stop();
  });

  it("never lets the inspector library walk the rule snapshot: it is cut to its version and counts before any conversion", async () => {
    bridge = await startInspector({ port: 0 });
    const snapshot = exampleSnapshot();
    // A stand-in for the multi-MB columns: counts every read the library's stringify would make.
    let reads = 0;
    Object.defineProperty(snapshot, "probe", { enumerable: true, get: () => (reads++, new Int32Array(1_000)) });
    const actor = await loadAndRefresh(snapshot, bridge);
    await new Promise((r) => setTimeout(r, 300)); // the library converts on an idle callback
    expect(reads).toBe(0);
    actor.stop();
  });

  it("listens on the loopback interface only", async () => {
    bridge = await startInspector({ port: 0 });
    const port = Number(new URL(bridge.url).port);
    const external = Object.values(networkInterfaces()).flat().find((i) => i && i.family === "IPv4" && !i.internal);
    const reachable = (host: string) =>
      new Promise<boolean>((resolve) => {
        const s = tcpConnect(port, host);
        s.once("connect", () => (s.destroy(), resolve(true)));
        s.once("error", () => resolve(false));
      });
    expect(await reachable("127.0.0.1")).toBe(true);
    // 127.0.0.2 is loopback too: a server on every interface (0.0.0.0) would answer there; one on 127.0.0.1 does not.
    expect(await reachable("127.0.0.2")).toBe(false);
    if (external) expect(await reachable(external.address)).toBe(false);
  });

  const opened = (ws: WebSocket) =>
    new Promise<string>((resolve) => {
      ws.once("open", () => resolve("open"));
      ws.once("unexpected-response", (_req, res) => resolve(`refused ${res.statusCode}`));
      ws.once("error", () => resolve("error"));
    });

  it("refuses a WebSocket from another site's page, takes one from its own page", async () => {
    bridge = await startInspector({ port: 0 });
    const wsUrl = bridge.url.replace("http", "ws");
    const evil = new WebSocket(wsUrl, { origin: "http://evil.example" });
    expect(await opened(evil)).toMatch(/^refused 40\d$/);
    const own = new WebSocket(wsUrl, { origin: bridge.url.replace(/\/$/, "") });
    expect(await opened(own)).toBe("open");
    own.close();
  });

  it("closes a connection that sends more than 1 MiB at once, and keeps its replay buffer within its byte cap", async () => {
    bridge = await startInspector({ port: 0 });
    const wsUrl = bridge.url.replace("http", "ws");
    const big = new WebSocket(wsUrl);
    await opened(big);
    const closed = new Promise<number>((resolve) => big.once("close", (code) => resolve(code)));
    big.send("x".repeat(INSPECTOR_MAX_PAYLOAD + 1));
    expect(await closed).toBe(1009); // message too big

    const sender = new WebSocket(wsUrl);
    await opened(sender);
    const chunk = JSON.stringify({ type: "@xstate.event", pad: "y".repeat(600_000) });
    for (let i = 0; i < 20; i++) sender.send(chunk); // 12 MB in all
    await new Promise((r) => setTimeout(r, 500));
    const late = new WebSocket(wsUrl);
    let replayed = 0;
    late.on("message", (d) => (replayed += String(d).length));
    await opened(late);
    await new Promise((r) => setTimeout(r, 500));
    expect(replayed).toBeGreaterThan(0);
    expect(replayed).toBeLessThanOrEqual(INSPECTOR_REPLAY_BYTES);
    sender.close();
    late.close();
  });
});
