import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";

describe("metrics of a stopped service", () => {
  it("keep nothing of it alive, and each service's /metrics has the process's own metrics once", () => {
    const out = execFileSync(process.execPath, ["--expose-gc", "--import", "tsx", "test/fixtures/metrics-retention-child.ts"], { encoding: "utf8" });
    expect(JSON.parse(out.trim().split("\n").pop()!)).toEqual({ collected: [true, true], exposedCpu: [1, 1] });
  });
});
