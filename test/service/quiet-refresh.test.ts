import { describe, expect, it } from "vitest";
import { eventually, testConfig } from "../support/nats.js";
import { useServiceHarness } from "../support/service.js";

const h = useServiceHarness();

describe("routine refreshes on the status page", () => {
  it("a timed refresh that changed nothing is counted, not listed; one a notice asked for is listed and marked", async () => {
    const config = testConfig(h.db.url, { TORT_REFRESH_INTERVAL_MS: "1000", TORT_MIN_REFRESH_GAP_MS: "0", TORT_FLEET: "off" });
    const service = await h.start(config);
    await eventually(() => service.ruleCacheState() === "ready" || undefined, "ready");
    await eventually(() => ((service.recent.quietRefreshes?.count ?? 0) >= 3 ? true : undefined), "three quiet refreshes", 15_000);
    const states = service.recent.transitions.map((t) => t.state);
    expect(states).not.toContain("refreshing");
    expect(states.filter((s) => s === "ready")).toHaveLength(1);

    h.nc.publish(config.TORT_RULES_CHANGED_SUBJECT);
    await eventually(() => (service.recent.transitions.some((t) => t.state === "refreshing") ? true : undefined), "the notice's refresh listed", 15_000);
    await eventually(() => (service.recent.transitions.at(-1)?.state === "ready" ? true : undefined), "ready again");
  });
});
