/** The on-demand heap profile: a .heapprofile that parses and names the rule snapshot's allocation sites after a load. */
import { describe, expect, it } from "vitest";
import { serveOps } from "../../src/ops/serve-ops.js";
import { eventually, testConfig } from "../support/nats.js";
import { useServiceHarness } from "../support/service.js";

const h = useServiceHarness();

interface ProfileNode {
  callFrame: { functionName: string; url: string };
  selfSize: number;
  children: ProfileNode[];
}

describe("heap profile", () => {
  it("is off unless asked for (TORT_OPS_DEBUG): a 404 that says how to turn it on", async () => {
    const config = testConfig(h.db.url);
    const service = await h.start(config);
    await eventually(() => service.snapshot$.value, "first snapshot");
    const ops = await serveOps({ service, config, port: 0, natsConnected: () => true, inspectorUrl: null });
    h.onCleanup(() => ops.close());
    const res = await fetch(new URL("debug/heap-profile?seconds=1", ops.url));
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: string }).error).toContain("TORT_OPS_DEBUG=on");
  });

  it("samples allocations on demand and names the snapshot's allocation sites after a load", async () => {
    const config = testConfig(h.db.url, { TORT_OPS_DEBUG: "on" });
    const service = await h.start(config);
    await eventually(() => service.snapshot$.value, "first snapshot");
    const ops = await serveOps({ service, config, port: 0, natsConnected: () => true, inspectorUrl: null });
    h.onCleanup(() => ops.close());

    expect((await fetch(new URL("debug/heap-profile?seconds=0", ops.url))).status).toBe(400);
    const taking = fetch(new URL("debug/heap-profile?seconds=3", ops.url));
    await new Promise((r) => setTimeout(r, 300));
    expect((await fetch(new URL("debug/heap-profile?seconds=1", ops.url))).status).toBe(409); // one at a time
    // A full reload while it samples: the new snapshot's allocations are live when sampling stops.
    const before = service.snapshot$.value;
    h.nc.publish(config.TORT_RULES_CHANGED_SUBJECT, JSON.stringify({ full: true }));
    await eventually(() => service.snapshot$.value !== before, "the reload", 2_500, 20);
    const res = await taking;
    expect(res.status).toBe(200);
    expect(res.headers.get("content-disposition")).toMatch(/\.heapprofile"$/);
    const profile = (await res.json()) as { head: ProfileNode; samples: unknown[] };
    expect(profile.samples.length).toBeGreaterThan(0);
    // Allocation sites (nodes with bytes of their own) in the code that loads and compiles the rules.
    const sites: string[] = [];
    const walk = (n: ProfileNode) => {
      if (n.selfSize > 0 && /\/src\/(match|rules)\//.test(n.callFrame.url)) sites.push(`${n.callFrame.functionName || "(anonymous)"} ${n.callFrame.url.replace(/^.*\/src\//, "src/")}`);
      n.children.forEach(walk);
    };
    walk(profile.head);
    expect(sites.length).toBeGreaterThan(0);
    expect(sites.some((s) => /src\/rules\/load-rules|src\/match\/(rule-table|snapshot)/.test(s))).toBe(true);
  });
});
