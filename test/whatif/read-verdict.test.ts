import { describe, expect, it } from "vitest";
import { buildVerdict } from "../../src/match/match-result.js";
import type { Decision, RecognitionResult } from "../../src/match/types.js";
import { readVerdict } from "../../src/whatif/whatif.js";

const result = { aid: 1, cid: 2, mid: 3, tid: 4, durationMs: 10, recognizedAt: "2026-01-01T00:00:00Z", recognizedAtMs: 0, matches: [] } as RecognitionResult;
const verdict = (decision: Decision, stream: string, seq: number) => JSON.stringify(buildVerdict(result, decision, 'v"1', { stream, seq }, "2026-01-01T00:00:00.000Z"));

describe("readVerdict", () => {
  it.each([
    ["a pass", { action: "pass", ruleId: null, hits: [] } as Decision, "IN", 7],
    ["hits", { action: "block", ruleId: 12, hits: [{ ruleId: 12, ownerId: 1, action: "block", priority: 3, matchedMs: 5 }, { ruleId: 4005, ownerId: 2, action: "claim", priority: 0, matchedMs: 9 }] } as Decision, "FINGERPRINT_RESULTS", 123456789],
    ["a stream name that JSON escapes", { action: "claim", ruleId: 9, hits: [{ ruleId: 9, ownerId: 1, action: "claim", priority: 0, matchedMs: 1 }] } as Decision, 'we"ird', 5],
  ])("scans %s as JSON.parse reads it", (_name, decision, stream, seq) => {
    const text = verdict(decision, stream, seq);
    const parsed = JSON.parse(text);
    expect(readVerdict(text, stream)).toEqual({ seq, ruleId: parsed.ruleId, hits: parsed.hits.map((h: { ruleId: number }) => h.ruleId) });
    expect(readVerdict(text, "OTHER").seq).toBeNaN();
  });

  it("parses what it cannot scan", () => {
    expect(readVerdict(JSON.stringify({ hits: [{ ruleId: 3 }], ruleId: 3, source: { seq: 2, stream: "S" } }), "S")).toEqual({ seq: 2, ruleId: 3, hits: [3] });
  });
});
