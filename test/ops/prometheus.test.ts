/**
 * The alert rules against a real Prometheus (Debian's), scraping a running
 * service on loopback: MySQL goes away while a backlog drains, the staleness
 * alert goes pending, then firing, in Prometheus's own API; MySQL comes back
 * and the alert resolves. The shipped rules are used as they are, but for
 * their `for:` durations, shortened to seconds.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnService, type SpawnedService } from "../support/cli.js";
import { freePort } from "../support/nats-server.js";
import { eventually, publishInputs, removeTopology, testConfig, uniqueNames } from "../support/nats.js";
import { resultLines, useServiceHarness } from "../support/service.js";
import { createTcpProxy, type TcpProxy } from "../support/tcp-proxy.js";

const h = useServiceHarness();
let proxy: TcpProxy;
let prometheus: ChildProcess | undefined;
let service: SpawnedService | undefined;
let promLog = "";

beforeAll(async () => {
  proxy = await createTcpProxy(Number(new URL(h.db.url).port || 3306));
  await proxy.up();
});
afterAll(async () => {
  service?.child.kill("SIGTERM");
  await service?.exited;
  prometheus?.kill("SIGTERM");
  await proxy?.down();
});

interface Alert {
  labels: { alertname: string };
  state: "pending" | "firing";
}

describe("alert rules in a real Prometheus", () => {
  it("the staleness alert goes pending, then firing while MySQL is away during a drain, and resolves when it is back", async () => {
    const names = uniqueNames();
    const opsPort = await freePort();
    const proxied = new URL(h.db.url);
    proxied.port = String(proxy.port);
    const env = { ...names, DATABASE_URL: proxied.toString(), LOG_LEVEL: "info", TORT_OPS_PORT: String(opsPort), TORT_REFRESH_INTERVAL_MS: "1000", TORT_MIN_REFRESH_GAP_MS: "0", TORT_RETRY_BASE_MS: "200", TORT_RETRY_MAX_MS: "1000", TORT_LAG_POLL_MS: "500", TORT_CONCURRENCY: "8" };
    const config = testConfig(proxied.toString(), env);
    h.onCleanup(() => removeTopology(h.nc, config));

    // The shipped rules, with their `for:` shortened; scraped and evaluated every second.
    const dir = mkdtempSync(join(tmpdir(), "tortmatch-prometheus-"));
    const rules = readFileSync(fileURLToPath(new URL("../../deploy/prometheus/tortmatch.rules.yml", import.meta.url)), "utf8").replace(/for: \d+m/g, "for: 3s");
    writeFileSync(join(dir, "rules.yml"), rules);
    writeFileSync(
      join(dir, "prometheus.yml"),
      `global: { scrape_interval: 1s, evaluation_interval: 1s }
rule_files: [rules.yml]
scrape_configs:
  - job_name: tortmatch
    static_configs: [{ targets: ["127.0.0.1:${opsPort}"] }]
`,
    );
    const promPort = await freePort();
    prometheus = spawn("prometheus", [`--config.file=${join(dir, "prometheus.yml")}`, `--storage.tsdb.path=${join(dir, "data")}`, `--web.listen-address=127.0.0.1:${promPort}`], { stdio: ["ignore", "ignore", "pipe"] });
    prometheus.stderr!.on("data", (d) => (promLog = (promLog + d).slice(-20_000)));
    const alerts = async (): Promise<Alert[]> => {
      const res = await fetch(`http://127.0.0.1:${promPort}/api/v1/alerts`);
      return ((await res.json()) as { data: { alerts: Alert[] } }).data.alerts;
    };
    const stale = async () => (await alerts()).find((a) => a.labels.alertname === "TortmatchSnapshotStale")?.state ?? "inactive";

    service = spawnService(env);
    await eventually(async () => (await fetch(`http://127.0.0.1:${opsPort}/readyz`)).status === 200, "the service ready", 30_000);
    await eventually(async () => {
      const res = await fetch(`http://127.0.0.1:${promPort}/api/v1/query?query=${encodeURIComponent('tortmatch_ready{job="tortmatch"}')}`).catch(() => null);
      const body = res ? ((await res.json()) as { data: { result: { value: [number, string] }[] } }) : null;
      return body?.data.result[0]?.value[1] === "1";
    }, "Prometheus scraping the service", 30_000, 250);
    expect(await stale(), promLog).toBe("inactive");

    // A backlog drains while MySQL is away: the old snapshot serves, refreshes fail, it ages.
    await publishInputs(h.nc, config, resultLines(3_000));
    await proxy.down();
    const states: string[] = [];
    await eventually(async () => {
      const s = await stale();
      if (states.at(-1) !== s) states.push(s);
      return s === "firing";
    }, "the staleness alert firing", 60_000, 250);
    expect(states).toContain("pending");
    expect(states.indexOf("pending")).toBeLessThan(states.indexOf("firing"));

    await proxy.up();
    await eventually(async () => (await stale()) === "inactive", "the alert resolved", 60_000, 250);
    expect(service.child.exitCode).toBeNull();
  });
});
