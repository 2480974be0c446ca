import { describe, expect, it } from "vitest";
import { parseLiveConfigValue } from "../../src/live-config/parse-live-config.js";

describe("live config values", () => {
  it.each([
    ["concurrency", "1", 1],
    ["concurrency", " 4096\n", 4096],
    ["concurrency", "064", 64],
    ["concurrency", "auto", "auto"],
    ["concurrency", " auto\n", "auto"],
    ["concurrency_min", "1", 1],
    ["concurrency_max", "4096", 4096],
    ["refresh_interval_ms", "0", 0],
    ["refresh_interval_ms", "1000", 1000],
    ["refresh_interval_ms", "86400000", 86_400_000],
  ] as const)("%s = %j is accepted", (key, text, value) => {
    expect(parseLiveConfigValue(key, text)).toEqual({ ok: true, value: { key, value } });
  });

  it.each([
    ["concurrency", "0"],
    ["concurrency", "4097"],
    ["concurrency", "-1"],
    ["concurrency", "1.5"],
    ["concurrency", "lots"],
    ["concurrency", ""],
    ["concurrency", "1e3"],
    ["concurrency", "AUTO"],
    ["concurrency", "auto 64"],
    ["concurrency_min", "auto"],
    ["concurrency_min", "0"],
    ["concurrency_max", "4097"],
    ["refresh_interval_ms", "999"],
    ["refresh_interval_ms", "86400001"],
    ["refresh_interval_ms", "60s"],
  ] as const)("%s = %j is rejected with a reason", (key, text) => {
    const r = parseLiveConfigValue(key, text);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toContain(key);
  });
});
