import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { isLoopback, servesPages, startOpsServer } from "../../src/ops/ops-server.js";
import type { Status } from "../../src/ops/status.js";

describe("the status page on a listener beyond loopback", () => {
  it.each([
    ["127.0.0.1", "auto", true],
    ["localhost", "auto", true],
    ["::1", "auto", true],
    ["127.0.1.1", "auto", true],
    ["0.0.0.0", "auto", false],
    ["10.1.2.3", "auto", false],
    ["ops.example.com", "auto", false],
    ["0.0.0.0", "on", true],
    ["127.0.0.1", "off", false],
  ] as const)("%s with TORT_OPS_PAGES=%s: served %s", (host, setting, served) => {
    expect(servesPages(host, setting)).toBe(served);
  });

  it("off: /metrics, /healthz and /readyz answer; the page and its data are 404 with how to turn them on", async () => {
    const status = { ready: true, snapshot: null, natsConnected: true, ruleCache: { state: "ready" } } as unknown as Status;
    const server = await startOpsServer({ host: "127.0.0.1", port: 0, registry: new Registry(), status: () => status, pages: false });
    try {
      const get = (path: string) => fetch(new URL(path, server.url));
      for (const path of ["metrics", "healthz", "readyz"]) expect((await get(path)).status, path).toBe(200);
      for (const path of ["", "status", "status.json", "history.json", "chart.json", "events"]) {
        const res = await get(path);
        expect(res.status, path).toBe(404);
        expect(await res.text()).toContain("TORT_OPS_PAGES=on");
      }
    } finally {
      await server.close();
    }
    expect(isLoopback("127.0.0.1")).toBe(true);
  });
});
