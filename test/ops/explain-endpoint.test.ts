/**
 * `tort.explain` is bounded and fair (spec section 10; anyone on the NATS can ask): the explanation
 * gives the event loop back between slices, its size is capped with a clear error, and requests
 * beyond the queue are told to try again. Its answers are the pure explanation's.
 */
import { describe, expect, it } from "vitest";
import { explainResult } from "../../src/match/explain.js";
import { slotAssetId, slotCount } from "../../src/match/snapshot.js";
import { createExplainQueue, EXPLAIN_MAX_WAITING, explainRequest } from "../../src/ops/explain-endpoint.js";
import { decodeResultText } from "../../src/ingest/decode-result.js";
import { generatedSnapshot } from "../support/rule-sets.js";

const snapshot = generatedSnapshot({ rules: 5_000, properties: 180_000, seed: 42 });
const index = snapshot.assetIndex;
const assets: number[] = [];
for (let s = 0; s < index.slots; s++) if (slotCount(index, s) > 0) assets.push(slotAssetId(index, s));
/** 10,000 items spread over every asset the rules name: an explanation of nearly every rule. */
const spread = JSON.stringify({
  aid: 1, cid: 2, mid: 3, tid: 1, durationMs: 86_400_000, recognizedAt: "2026-06-01T00:00:00Z",
  matches: Array.from({ length: 10_000 }, (_, k) => ({ assetId: assets[k % assets.length], startMs: k * 8, endMs: k * 8 + 50_000, score: (k % 7) / 6 })),
});
const bytes = new TextEncoder().encode(spread);
/** 1,000 of those items: an explanation that fits a reply. */
const smaller = new TextEncoder().encode(JSON.stringify({ ...JSON.parse(spread), matches: JSON.parse(spread).matches.slice(0, 1_000) }));

describe("tort.explain", () => {
  it("answers what the pure explanation says, giving the event loop back while it works", async () => {
    let turns = 0;
    let counting = true;
    const tick = () => {
      turns++;
      if (counting) setImmediate(tick);
    };
    setImmediate(tick);
    const reply = JSON.parse(await explainRequest(snapshot, bytes, 64 * 2 ** 20)) as { rules: unknown[] };
    counting = false;
    const checked = decodeResultText(spread);
    if (!checked.ok) throw new Error(checked.reason);
    expect(reply.rules).toEqual(JSON.parse(JSON.stringify(explainResult(snapshot, checked.value))));
    expect(reply.rules.length).toBeGreaterThan(1_000);
    // Other work ran between its slices: many turns of the event loop, not one at the end.
    expect(turns).toBeGreaterThan(10);
  });

  it("refuses, with a clear error, an explanation larger than a reply may carry or naming too many rules", async () => {
    const tooBig = JSON.parse(await explainRequest(snapshot, bytes, 64 * 1024)) as { error: string };
    expect(tooBig.error).toMatch(/^the explanation names \d+ rules, \d+ bytes: more than the 65536 a reply may carry; explain fewer assets at a time$/);
    const checked = decodeResultText(spread);
    if (!checked.ok) throw new Error(checked.reason);
    expect(() => explainResult(snapshot, checked.value, { maxRules: 100 })).toThrow(/more than 100 rules/);
  });

  it("explains one request at a time; past the queue's bound, the rest are told to try again", async () => {
    const queue = createExplainQueue({ snapshot: () => snapshot, maxReplyBytes: () => 8 * 2 ** 20 });
    const replies: Promise<{ error?: string; rules?: unknown[] }>[] = [];
    for (let k = 0; k < EXPLAIN_MAX_WAITING + 4; k++) {
      replies.push(new Promise((resolve) => queue.ask(smaller, (text) => resolve(JSON.parse(text)))));
    }
    const answered = await Promise.all(replies);
    const busy = answered.filter((r) => r.error?.startsWith("busy"));
    // One runs, EXPLAIN_MAX_WAITING wait: the rest are refused at once.
    expect(busy).toHaveLength(3);
    expect(answered.filter((r) => Array.isArray(r.rules))).toHaveLength(EXPLAIN_MAX_WAITING + 1);
    queue.stop();
  });
});
