import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { buildVerdict } from "../../src/match/match-result.js";
import { RULE_ACTIONS, type Decision, type Hit, type RecognitionResult } from "../../src/match/types.js";
import { encodeVerdict, verdictJson } from "../../src/verdict/publish.js";

const number = fc.oneof(fc.integer(), fc.nat({ max: 2 ** 53 }), fc.double(), fc.constantFrom(-0, Number.NaN, Number.POSITIVE_INFINITY, 1e21, 5e-7));
const text = fc.oneof(fc.string(), fc.string({ unit: "grapheme" }), fc.string({ unit: "binary" }), fc.constantFrom('"', "\\", "\n\u0000", "\ud800"));
const hit: fc.Arbitrary<Hit> = fc.record({ ruleId: number, ownerId: number, action: fc.constantFrom(...RULE_ACTIONS), priority: number, matchedMs: number });
const decision: fc.Arbitrary<Decision> = fc.oneof(
  fc.constant<Decision>({ action: "pass", ruleId: null, hits: [] }),
  fc.array(hit, { minLength: 1, maxLength: 6 }).map((hits) => ({ action: hits[0]!.action, ruleId: hits[0]!.ruleId, hits })),
);
const result = fc.record({ aid: number, cid: number, mid: number }).map((r) => ({ ...r, tid: 1, durationMs: 1, recognizedAt: "", recognizedAtMs: 0, matches: [] }) as RecognitionResult);

describe("verdictJson", () => {
  it("writes what JSON.stringify writes for a verdict made by buildVerdict, and its bytes as UTF-8", () => {
    fc.assert(
      fc.property(result, decision, text, fc.option(fc.record({ stream: text, seq: number })), text, (r, d, version, source, decidedAt) => {
        const verdict = buildVerdict(r, d, version, source, decidedAt);
        const expected = JSON.stringify(verdict);
        expect(verdictJson(verdict)).toBe(expected);
        expect(Buffer.from(encodeVerdict(verdict)).equals(Buffer.from(expected, "utf8"))).toBe(true);
      }),
      { numRuns: 3_000 },
    );
  });
});
