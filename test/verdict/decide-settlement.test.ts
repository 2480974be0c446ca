/** decideSettlement, branch by branch: a table of facts and the step each must give. */
import { describe, expect, it } from "vitest";
import { decideSettlement, type PublishOutcome, type SettlementFacts, type SettlementStep } from "../../src/verdict/decide-settlement.js";

const stored: PublishOutcome = { kind: "stored" };
const duplicate: PublishOutcome = { kind: "duplicate" };
const timeout: PublishOutcome = { kind: "failed", certainty: "unknown", error: "TIMEOUT" };
const refused: PublishOutcome = { kind: "failed", certainty: "refused", error: "maximum message size exceeded" };

const valid = { ok: true } as const;
const invalid = { ok: false, reason: "aid: Expected integer" } as const;
const facts = (over: Partial<SettlementFacts>): SettlementFacts => ({
  decoded: valid,
  delivery: 1,
  finalDelivery: 5,
  maxPublishAttempts: 3,
  verdictAttempts: [],
  ...over,
});

const table: [string, Partial<SettlementFacts>, SettlementStep][] = [
  // Invalid input: dead letter, then term; a failed dead letter is retried, and left to the worker on the final delivery.
  ["invalid: publish the dead letter", { decoded: invalid }, { do: "publish-dead-letter", reason: invalid.reason }],
  ["invalid, dead letter stored: term", { decoded: invalid, deadLetter: stored }, { do: "term", outcome: "dead-letter" }],
  ["invalid, dead letter known already: term", { decoded: invalid, deadLetter: duplicate }, { do: "term", outcome: "dead-letter" }],
  ["invalid, dead letter failed early: nak", { decoded: invalid, deadLetter: timeout }, { do: "nak", outcome: "retry", why: "dead letter not published: TIMEOUT" }],
  ["invalid, dead letter failed on the final delivery: stuck", { decoded: invalid, delivery: 5, deadLetter: refused }, { do: "nak", outcome: "stuck", why: "dead letter not published: maximum message size exceeded" }],
  ["invalid, on the consumer's extra delivery: same as final", { decoded: invalid, delivery: 6, deadLetter: timeout }, { do: "nak", outcome: "stuck", why: "dead letter not published: TIMEOUT" }],
  // Valid input: publish, then ack.
  ["valid: publish the verdict", {}, { do: "publish-verdict" }],
  ["verdict stored: ack", { verdictAttempts: [stored] }, { do: "ack", outcome: "verdict" }],
  ["verdict known already: ack as a duplicate", { verdictAttempts: [duplicate] }, { do: "ack", outcome: "duplicate-verdict" }],
  ["publish failed before the final delivery: nak", { delivery: 4, verdictAttempts: [timeout] }, { do: "nak", outcome: "retry", why: "verdict not published: TIMEOUT" }],
  ["refused before the final delivery: nak too", { delivery: 1, verdictAttempts: [refused] }, { do: "nak", outcome: "retry", why: "verdict not published: maximum message size exceeded" }],
  // The final delivery.
  ["final, timed out: publish again (the Msg-Id makes it safe)", { delivery: 5, verdictAttempts: [timeout] }, { do: "publish-verdict" }],
  ["final, timed out then stored as a duplicate: ack", { delivery: 5, verdictAttempts: [timeout, duplicate] }, { do: "ack", outcome: "duplicate-verdict" }],
  ["final, timed out every attempt: stuck, never a dead letter", { delivery: 5, verdictAttempts: [timeout, timeout, timeout] }, { do: "nak", outcome: "stuck", why: "verdict publish outcome unknown after 3 attempts: TIMEOUT" }],
  ["final, timed out then refused: still no dead letter", { delivery: 5, verdictAttempts: [timeout, refused] }, { do: "publish-verdict" }],
  ["final, timed out, refused, refused: stuck", { delivery: 5, verdictAttempts: [timeout, refused, refused] }, { do: "nak", outcome: "stuck", why: "verdict publish outcome unknown after 3 attempts: maximum message size exceeded" }],
  ["final, refused: dead letter with the reason", { delivery: 5, verdictAttempts: [refused] }, { do: "publish-dead-letter", reason: "verdict publish refused on delivery 5 of 5: maximum message size exceeded" }],
  ["final, refused, dead letter stored: term", { delivery: 5, verdictAttempts: [refused], deadLetter: stored }, { do: "term", outcome: "dead-letter" }],
  // A redelivery later than the duplicate window: the verdict stream is asked first.
  ["late redelivery: look the verdict up first", { delivery: 2, late: true }, { do: "lookup-verdict" }],
  ["late, found: ack as a duplicate, no second verdict", { delivery: 2, late: true, lookup: "found" }, { do: "ack", outcome: "duplicate-verdict" }],
  ["late, absent: publish", { delivery: 2, late: true, lookup: "absent" }, { do: "publish-verdict" }],
  ["late, lookup inconclusive: publish (the Msg-Id still guards the window)", { delivery: 2, late: true, lookup: "unknown" }, { do: "publish-verdict" }],
  ["late, invalid: no lookup, a dead letter", { decoded: invalid, delivery: 2, late: true }, { do: "publish-dead-letter", reason: invalid.reason }],
  ["final, refused, dead letter failed: stuck", { delivery: 5, verdictAttempts: [refused], deadLetter: timeout }, { do: "nak", outcome: "stuck", why: "dead letter not published: TIMEOUT" }],
];

describe("decideSettlement", () => {
  it.each(table)("%s", (_name, over, step) => {
    expect(decideSettlement(facts(over))).toEqual(step);
  });

  it("never dead-letters a valid input while any attempt may have stored its verdict, and never acks without a PubAck", () => {
    const outcomes = [stored, duplicate, timeout, refused];
    const sequences: PublishOutcome[][] = [[]];
    for (let len = 1; len <= 3; len++) {
      for (const prefix of sequences.filter((s) => s.length === len - 1)) for (const o of outcomes) sequences.push([...prefix, o]);
    }
    for (const attempts of sequences) {
      for (const delivery of [1, 4, 5, 6]) {
        for (const deadLetter of [undefined, stored, timeout]) {
          const step = decideSettlement(facts({ delivery, verdictAttempts: attempts, ...(deadLetter ? { deadLetter } : {}) }));
          const last = attempts.at(-1);
          if (step.do === "ack") expect(last?.kind === "stored" || last?.kind === "duplicate").toBe(true);
          if (step.do === "publish-dead-letter" || step.do === "term") {
            expect(attempts.some((a) => a.kind === "failed" && a.certainty === "unknown")).toBe(false);
            expect(delivery).toBeGreaterThanOrEqual(5);
          }
          if (step.do === "publish-verdict") expect(attempts.length).toBeLessThan(3);
        }
      }
    }
  });
});
