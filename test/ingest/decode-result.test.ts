import { describe, expect, it } from "vitest";
import { decodeResult, decodeResultText, MAX_RESULT_BYTES, parseInstant } from "../../src/ingest/decode-result.js";

const valid = {
  aid: 170001, cid: 279786, mid: 9527, tid: 28, durationMs: 245500,
  recognizedAt: "2026-11-28T12:00:00.000Z",
  matches: [{ assetId: 5550001, startMs: 30000, endMs: 150000, score: 0.93 }],
};
const withField = (path: string, value: unknown) => {
  const copy = structuredClone(valid) as Record<string, unknown>;
  if (path.startsWith("matches.0.")) (copy.matches as Record<string, unknown>[])[0]![path.slice(10)] = value;
  else copy[path] = value;
  return JSON.stringify(copy);
};

describe("decodeResult", () => {
  it("accepts the spec's example and keeps the instant", () => {
    const r = decodeResultText(JSON.stringify(valid));
    expect(r.ok && r.value.recognizedAtMs).toBe(Date.UTC(2026, 10, 28, 12));
  });

  it.each([
    ["aid", -1, /^aid: /],
    ["aid", 2 ** 53, /^aid: /],
    ["cid", 1.5, /^cid: /],
    ["mid", null, /^mid: /],
    ["tid", -1, /^tid: /],
    ["durationMs", 0, /^durationMs: /],
    ["durationMs", 86_400_001, /^durationMs: /],
    ["recognizedAt", "2026-02-30T00:00:00Z", /^recognizedAt: not an ISO-8601/],
    ["recognizedAt", "2026-03-01T24:00:00Z", /^recognizedAt: /],
    ["recognizedAt", "2026-03-01 00:00:00Z", /^recognizedAt: /],
    ["recognizedAt", "2026-03-01T00:00:00", /^recognizedAt: /],
    ["recognizedAt", "2026-03-01T00:00:00+0800", /^recognizedAt: /],
    ["matches", {}, /^matches: /],
    ["matches.0.assetId", 0, /^matches\.0\.assetId: /],
    ["matches.0.startMs", -5, /^matches\.0\.startMs: /],
    ["matches.0.endMs", 30000, /^matches\.0: startMs must be less than endMs/],
    ["matches.0.score", -0.01, /^matches\.0\.score: /],
    ["matches.0.score", "1", /^matches\.0\.score: /],
  ])("%s = %j is rejected with a reason", (path, value, reason) => {
    const r = decodeResultText(withField(path, value));
    expect(r.ok ? "accepted" : r.reason).toMatch(reason);
  });

  it.each([
    ["offset", "2026-03-01T16:00:00+08:00", Date.UTC(2026, 2, 1, 8)],
    ["no fraction", "2026-03-01T08:00:00Z", Date.UTC(2026, 2, 1, 8)],
    ["long fraction", "2026-03-01T08:00:00.123456Z", Date.UTC(2026, 2, 1, 8, 0, 0, 123)],
    ["leap day", "2028-02-29T00:00:00Z", Date.UTC(2028, 1, 29)],
  ])("instant with %s", (_n, text, ms) => {
    expect(parseInstant(text)).toBe(ms);
  });

  it("rejects too many match items", () => {
    const matches = Array.from({ length: 10_001 }, () => valid.matches[0]);
    const r = decodeResultText(JSON.stringify({ ...valid, matches }));
    expect(r.ok ? "" : r.reason).toMatch(/^matches: /);
  });

  it("rejects invalid UTF-8, oversized bodies and non-objects on one line", () => {
    const bad = decodeResult(new Uint8Array([0x7b, 0xff, 0x7d]));
    expect(bad.ok ? "" : bad.reason).toBe("body: not valid UTF-8");
    const big = decodeResult(new Uint8Array(MAX_RESULT_BYTES + 1));
    expect(big.ok ? "" : big.reason).toMatch(/exceeds the 1048576-byte limit/);
    for (const raw of ["[]", "null", "7", "{\"aid\":\n1", ""]) {
      const r = decodeResultText(raw);
      expect(r.ok).toBe(false);
      expect(r.ok ? "" : r.reason).toMatch(/^[^\n]+$/);
    }
  });
});

describe("parseInstant", () => {
  it("agrees with Date.parse on valid instants", () => {
    for (const text of [
      "2026-11-28T12:00:00.000Z", "2026-03-01T16:00:00+08:00", "2026-03-01T16:00:00.5-03:30", "0050-06-15T00:00:00Z",
      "2024-02-29T23:59:59.999Z", "1999-12-31T23:59:59.12345+00:00", "2026-01-01T00:00:00-00:00",
    ]) {
      expect(parseInstant(text), text).toBe(Date.parse(text));
    }
  });
  it.each(["2025-02-29T00:00:00Z", "2026-04-31T00:00:00Z", "2026-01-01T00:60:00Z", "2026-01-01T00:00:00+24:00", "2026-00-10T00:00:00Z"])(
    "rejects %s",
    (text) => expect(parseInstant(text)).toBeNaN(),
  );
});
