import { describe, expect, it } from "vitest";
import { createMetrics } from "../../src/ops/metrics.js";

describe("metrics", () => {
  it("exports every outcome and action at 0 from the start, and names the process's own metrics once", async () => {
    const metrics = createMetrics({ inFlight: () => 0, limit: () => 64, waiting: () => 0, snapshot: () => null, ruleCacheState: () => "idle", ruleCacheStates: ["idle"], now: () => 0 });
    const text = await metrics.registry.metrics();
    for (const outcome of ["verdict", "duplicate-verdict", "dead-letter", "retry", "stuck"]) expect(text).toContain(`tortmatch_messages_total{outcome="${outcome}"} 0`);
    for (const action of ["block", "limit", "review", "claim", "pass"]) expect(text).toContain(`tortmatch_verdicts_total{action="${action}"} 0`);
    expect(text).toContain('tortmatch_rule_loads_total{kind="full",result="error"} 0');
    expect(text).toContain("tortmatch_process_cpu_seconds_total");
    expect(text).not.toContain("tortmatch_process_process_");
  });
});
