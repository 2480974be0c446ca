import { describe, expect, it } from "vitest";
import { createMetrics } from "../../src/ops/metrics.js";
import { createLatencyWindow } from "../../src/ops/history.js";
import type { OpsView } from "../../src/ops/ops-view.js";
import { createServiceStats } from "../../src/ops/service-stats.js";
import { currentStatus } from "../../src/ops/status.js";

describe("metrics", () => {
  it("exports every outcome and action at 0 from the start, and names the process's own metrics once", async () => {
    const metrics = createMetrics({ stats: createServiceStats(), inFlight: () => 0, limit: () => 64, waiting: () => 0, snapshot: () => null, ruleCacheState: () => "idle", ruleCacheStates: ["idle"], now: () => 0 });
    const text = await metrics.registry.metrics();
    for (const outcome of ["verdict", "duplicate-verdict", "dead-letter", "retry", "stuck"]) expect(text).toContain(`tortmatch_messages_total{outcome="${outcome}"} 0`);
    for (const action of ["block", "limit", "review", "claim", "pass"]) expect(text).toContain(`tortmatch_verdicts_total{action="${action}"} 0`);
    expect(text).toContain('tortmatch_rule_loads_total{kind="full",result="error"} 0');
    expect(text).toContain("tortmatch_process_cpu_seconds_total");
    expect(text).not.toContain("tortmatch_process_process_");
  });

  it("exports the pipeline's counts of messages and verdicts as they are when scraped", async () => {
    const stats = createServiceStats();
    const metrics = createMetrics({ stats, inFlight: () => 0, limit: () => 64, waiting: () => 0, snapshot: () => null, ruleCacheState: () => "idle", ruleCacheStates: ["idle"], now: () => 0 });
    for (let i = 0; i < 3; i++) stats.messageSettled("verdict", "claim");
    stats.messageSettled("duplicate-verdict", "block");
    stats.messageSettled("dead-letter");
    let text = await metrics.registry.metrics();
    expect(text).toContain('tortmatch_messages_total{outcome="verdict"} 3');
    expect(text).toContain('tortmatch_messages_total{outcome="dead-letter"} 1');
    expect(text).toContain('tortmatch_verdicts_total{action="claim"} 3');
    expect(text).toContain('tortmatch_verdicts_total{action="block"} 1');
    stats.messageSettled("verdict", "claim");
    text = await metrics.registry.metrics();
    expect(text).toContain('tortmatch_messages_total{outcome="verdict"} 4');
    expect(text).toContain('tortmatch_verdicts_total{action="claim"} 4');
  });

  it("counts once: the pipeline's and the exhausted-deliveries worker's dead letters are the same number on /metrics and on the status page", async () => {
    const stats = createServiceStats();
    const metrics = createMetrics({ stats, inFlight: () => 0, limit: () => 64, waiting: () => 0, snapshot: () => null, ruleCacheState: () => "idle", ruleCacheStates: ["idle"], now: () => 0 });
    stats.messageReceived();
    stats.messageSettled("dead-letter", undefined, "invalid_json");
    stats.exhaustedSettled("dead-letter", "publish_refused");
    stats.exhaustedSettled("verdict");
    stats.exhaustedGaveUp();
    const text = await metrics.registry.metrics();
    expect(text).toContain('tortmatch_dead_letters_total{reason="invalid_json"} 1');
    expect(text).toContain('tortmatch_dead_letters_total{reason="publish_refused"} 1');
    expect(text).toContain('tortmatch_exhausted_total{outcome="dead-letter"} 1');
    expect(text).toContain('tortmatch_exhausted_total{outcome="verdict"} 1');
    expect(text).toContain("tortmatch_exhausted_given_up_total 1");
    const view: OpsView = {
      stats,
      limit: { limit: 64 },
      concurrency: { view: () => ({ mode: "fixed", limit: 64, min: 4, max: 1024 }) },
      latencies: createLatencyWindow(),
      snapshot$: { value: null },
      metrics,
      consumerLag: () => null,
      ruleCacheState: () => "idle",
      ruleCache: () => undefined,
      instanceId: "test",
      snapshotConfirmedAt: () => null,
      tablesAccess: () => ({ readable: null, reason: null }),
      fleetInstances: () => [],
      recent: { transitions: [], errors: [], quietRefreshes: { count: 0, lastAt: null } },
    };
    const status = currentStatus({ service: view, natsConnected: () => true, config: {}, startedAt: Date.now(), throughput: () => 0, inspector: null });
    const exported = [...text.matchAll(/^tortmatch_dead_letters_total\{[^}]*\} (\d+)$/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
    expect(status.deadLetters).toBe(2);
    expect(exported).toBe(status.deadLetters);
  });
});
