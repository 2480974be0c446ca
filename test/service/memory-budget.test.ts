/** TORT_SNAPSHOT_MAX_MB below what the rules need, at start: the load is abandoned, the instance is not ready and holds nothing. */
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { consumerState, eventually, publishInputs, testConfig } from "../support/nats.js";
import { resultLines, useServiceHarness } from "../support/service.js";

const h = useServiceHarness({ rules: 2_000, properties: 40_000, seed: 5 });

describe("memory budget", () => {
  it("a budget below the rules' size at start: not ready, nothing held, an error that names the variable", async () => {
    const config = testConfig(h.db.url, { TORT_SNAPSHOT_MAX_MB: "2", TORT_WAIT_BUFFER: "64" });
    const lines = resultLines(300, 0, { rules: 2_000, properties: 40_000, seed: 5 });
    await publishInputs(h.nc, config, lines);
    const logged: string[] = [];
    const log = pino({ level: "info" }, { write: (line: string) => void logged.push(line) });
    const service = await h.start(config, { log });
    await eventually(() => service.actor.system.get("ruleCache").getSnapshot().context.attempt >= 2, "two abandoned loads");
    expect(service.snapshot$.value).toBeNull();
    await eventually(() => service.stats.waiting === 0 && service.limit.inUse === 0, "nothing held");
    const errors = logged.map((l) => JSON.parse(l) as { level: number; msg: string; properties?: number }).filter((l) => l.level >= 50 && l.msg.includes("memory budget"));
    expect(errors.length).toBeGreaterThanOrEqual(2);
    expect(errors[0]!.msg).toContain("TORT_SNAPSHOT_MAX_MB");
    expect(errors[0]!.properties).toBeLessThan(40_000); // abandoned while reading
    const metrics = await service.metrics.registry.metrics();
    expect(Number(metrics.match(/tortmatch_rule_loads_total\{kind="full",result="over_budget"\} (\d+)/)?.[1])).toBeGreaterThanOrEqual(2);
    expect(metrics).toContain("tortmatch_ready 0");
    const state = await consumerState(h.nc, config);
    expect(state.pending + state.ackPending).toBe(lines.length); // nothing settled, nothing lost
  });
});
