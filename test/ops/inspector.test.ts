import { networkInterfaces } from "node:os";
import { connect as tcpConnect } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { createActor, fromPromise } from "xstate";
import { ruleCacheMachine, type LoadRulesInput } from "../../machines/rule-cache.machine.js";
import { createRuleTableBuilder } from "../../src/match/rule-table.js";
import { compileSnapshot, type RuleSnapshot } from "../../src/match/snapshot.js";
import { startInspector, type InspectorBridge } from "../../src/ops/inspector.js";
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

describe("Stately inspector bridge", () => {
  it("relays a load → ready → refreshing → ready cycle in the inspector's wire format, every state included", async () => {
    bridge = await startInspector({ port: 0 });
    expect(bridge.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const received: { type: string; snapshot?: { value?: unknown; context?: Record<string, unknown> } }[] = [];
    const browser = new WebSocket(bridge.url.replace("http", "ws"));
    browser.on("message", (data) => received.push(JSON.parse(String(data))));
    await new Promise((resolve) => browser.once("open", resolve));

    const snapshot = exampleSnapshot();
    const actor = createActor(
      ruleCacheMachine.provide({ actors: { loadRules: fromPromise<RuleSnapshot, LoadRulesInput>(async () => snapshot) } }),
      { input: { refreshIntervalMs: 0, fullReloadEvery: 10, retryBaseMs: 10, retryMaxMs: 100, minRefreshGapMs: 0 }, inspect: bridge.inspect },
    );
    actor.start();
    actor.send({ type: "START" });
    await eventually(() => actor.getSnapshot().value === "ready", "ready");
    actor.send({ type: "REFRESH", reason: "notice" });
    await eventually(() => actor.getSnapshot().context.loads === 2 && actor.getSnapshot().value === "ready", "ready again");

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
    if (external) expect(await reachable(external.address)).toBe(false);
  });
});
