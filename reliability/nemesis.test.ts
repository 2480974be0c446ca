/**
 * The fleet under a randomized schedule of faults for about a minute (reliability/nemesis.ts): kill -9
 * (the leader too), a database connection cut, late-committed rule edits, notices, pins, nats-server
 * restarts. A failure prints the seed: `npm run nemesis -- --seed N` replays its schedule.
 * `npm run nemesis -- --minutes 10` runs it longer.
 */
import { describe, expect, it } from "vitest";
import { runNemesis } from "./nemesis.js";

describe("the fleet under a nemesis", () => {
  it("loses and doubles nothing, ends on one version with the naive matcher's verdicts, and never names two rule sets alike", async () => {
    const seed = Number(process.env.NEMESIS_SEED ?? Math.floor(Math.random() * 2 ** 31));
    console.log(`nemesis: seed ${seed} (replay: npm run nemesis -- --seed ${seed})`);
    const summary = await runNemesis({ seed, durationMs: Number(process.env.NEMESIS_MS ?? 60_000) });
    console.log(`nemesis: ${JSON.stringify(summary)}`);
    expect(summary.lost).toEqual([]);
    expect(summary.duplicated).toEqual([]);
    expect(summary.strays).toEqual([]);
    expect(summary.finalVersion).not.toBeNull();
    expect(summary.finalMismatches).toBe(0);
    expect(summary.unexplainedVersions).toEqual([]);
    expect(summary.inputs).toBeGreaterThan(1_000);
  }, 420_000);
});
