/**
 * The matching of spec section 4: (snapshot, result) → decision. Pure and
 * synchronous; it never awaits, never logs and never sees raw bytes.
 */
import type { CompiledRule, RuleSnapshot } from "./snapshot.js";
import type { Decision, Hit, RecognitionResult, Verdict, VerdictSource } from "./types.js";

const PASS: Decision = Object.freeze({ action: "pass", ruleId: null, hits: Object.freeze([]) as readonly Hit[] });

// Scratch space for one call, reused across calls: the matcher is synchronous,
// so no two calls ever share it. Grows to the largest result seen (bounded by
// MAX_MATCH_ITEMS times the rules of the most shared asset).
const candRule: CompiledRule[] = [];
let candStart = new Float64Array(256);
let candEnd = new Float64Array(256);
let order = new Uint32Array(256);

function grow(): void {
  const size = candStart.length * 2;
  const start = new Float64Array(size);
  start.set(candStart);
  const end = new Float64Array(size);
  end.set(candEnd);
  candStart = start;
  candEnd = end;
  order = new Uint32Array(size);
}

/** Decide which rules hit a result and which action wins. */
export function matchResult(snapshot: RuleSnapshot, result: RecognitionResult): Decision {
  const t = result.recognizedAtMs;
  const duration = result.durationMs;
  let n = 0;
  for (const item of result.matches) {
    const rules = snapshot.rulesByAsset.get(item.assetId);
    if (rules === undefined) continue;
    const start = item.startMs > 0 ? item.startMs : 0;
    const end = item.endMs < duration ? item.endMs : duration;
    if (end <= start) continue;
    for (const rule of rules) {
      if (item.score < rule.minScore || t < rule.validFromMs || t >= rule.validToMs) continue;
      if (rule.zones !== null && !rule.zones.has(result.tid)) continue;
      if (rule.exemptMids !== null && rule.exemptMids.has(result.mid)) continue;
      if (n === candStart.length) grow();
      candRule[n] = rule;
      candStart[n] = start;
      candEnd[n] = end;
      n++;
    }
  }
  if (n === 0) return PASS;

  // Order candidates by rule rank, then by start: each rule's intervals become one sorted run.
  for (let i = 0; i < n; i++) order[i] = i;
  const byRankThenStart = (a: number, b: number) =>
    candRule[a]!.rank - candRule[b]!.rank || candStart[a]! - candStart[b]!;
  if (n <= 16) {
    for (let i = 1; i < n; i++) {
      const x = order[i]!;
      let j = i - 1;
      while (j >= 0 && byRankThenStart(order[j]!, x) > 0) {
        order[j + 1] = order[j]!;
        j--;
      }
      order[j + 1] = x;
    }
  } else {
    order.subarray(0, n).sort(byRankThenStart);
  }

  const hits: Hit[] = [];
  let i = 0;
  while (i < n) {
    const rule = candRule[order[i]!]!;
    // Union of this rule's intervals: overlaps counted once.
    let matchedMs = 0;
    let runStart = candStart[order[i]!]!;
    let runEnd = candEnd[order[i]!]!;
    i++;
    while (i < n && candRule[order[i]!] === rule) {
      const s = candStart[order[i]!]!;
      const e = candEnd[order[i]!]!;
      if (s > runEnd) {
        matchedMs += runEnd - runStart;
        runStart = s;
        runEnd = e;
      } else if (e > runEnd) {
        runEnd = e;
      }
      i++;
    }
    matchedMs += runEnd - runStart;
    if (matchedMs >= rule.minMatchedMs && matchedMs * 10_000 >= rule.minRatioBp * duration) {
      hits.push({ ruleId: rule.id, ownerId: rule.ownerId, action: rule.action, priority: rule.priority, matchedMs });
    }
  }
  candRule.fill(undefined as unknown as CompiledRule, 0, n); // drop references to old snapshots
  if (hits.length === 0) return PASS;
  return { action: hits[0]!.action, ruleId: hits[0]!.ruleId, hits };
}

/** Wrap a decision into the verdict of spec section 5. */
export function buildVerdict(
  result: RecognitionResult,
  decision: Decision,
  rulesVersion: string,
  source: VerdictSource | null,
  decidedAt: string,
): Verdict {
  return {
    aid: result.aid,
    cid: result.cid,
    mid: result.mid,
    action: decision.action,
    ruleId: decision.ruleId,
    hits: decision.hits,
    rulesVersion,
    source,
    decidedAt,
  };
}
