/**
 * The matching of spec section 4: (snapshot, result) → decision. Pure and
 * synchronous; it never awaits, never logs and never sees raw bytes.
 */
import { findAssetSlot, type CompiledRule, type RuleSnapshot } from "./snapshot.js";
import type { Decision, Hit, RecognitionResult, Verdict, VerdictSource } from "./types.js";

const PASS: Decision = Object.freeze({ action: "pass", ruleId: null, hits: Object.freeze([]) as readonly Hit[] });

// Scratch space for one call, reused across calls: the matcher is synchronous,
// so no two calls ever share it. Candidates (one per rule and match item that
// passes the rule's filters) are chained per rule through `candNext`, the chain
// heads kept by rule rank and stamped with the call's generation, so nothing is
// cleared between calls. Arrays grow to the largest result and snapshot seen
// (bounded by MAX_MATCH_ITEMS times the rules of the most shared asset).
let candStart = new Float64Array(256);
let candEnd = new Float64Array(256);
let candNext = new Int32Array(256);
let headByRank = new Int32Array(1024);
let stampByRank = new Uint32Array(1024);
let generation = 0;
const touched: CompiledRule[] = [];
const runStarts: number[] = [];
const runEnds: number[] = [];

function growCandidates(): void {
  const size = candStart.length * 2;
  const start = new Float64Array(size), end = new Float64Array(size), next = new Int32Array(size);
  start.set(candStart);
  end.set(candEnd);
  next.set(candNext);
  candStart = start;
  candEnd = end;
  candNext = next;
}

function growRanks(rank: number): void {
  let size = headByRank.length;
  while (size <= rank) size *= 2;
  headByRank = new Int32Array(size);
  stampByRank = new Uint32Array(size); // all stamps 0: generation is never 0 below
}

/** Total length of the union of one rule's intervals (its candidate chain), overlaps counted once. */
function unionLength(first: number): number {
  if (candNext[first] === -1) return candEnd[first]! - candStart[first]!;
  runStarts.length = 0;
  runEnds.length = 0;
  for (let c = first; c !== -1; c = candNext[c]!) {
    // Insertion by start: chains are short (one entry per match item of the rule's assets).
    const s = candStart[c]!, e = candEnd[c]!;
    let j = runStarts.length;
    runStarts.push(s);
    runEnds.push(e);
    while (j > 0 && runStarts[j - 1]! > s) {
      runStarts[j] = runStarts[j - 1]!;
      runEnds[j] = runEnds[j - 1]!;
      j--;
    }
    runStarts[j] = s;
    runEnds[j] = e;
  }
  let total = 0;
  let runStart = runStarts[0]!, runEnd = runEnds[0]!;
  for (let k = 1; k < runStarts.length; k++) {
    if (runStarts[k]! > runEnd) {
      total += runEnd - runStart;
      runStart = runStarts[k]!;
      runEnd = runEnds[k]!;
    } else if (runEnds[k]! > runEnd) {
      runEnd = runEnds[k]!;
    }
  }
  return total + runEnd - runStart;
}

/** Decide which rules hit a result and which action wins. */
export function matchResult(snapshot: RuleSnapshot, result: RecognitionResult): Decision {
  const t = result.recognizedAtMs;
  const duration = result.durationMs;
  if (++generation === 0xffffffff) {
    generation = 1;
    stampByRank.fill(0);
  }
  const index = snapshot.assetIndex;
  const { ranks, minScore, validFromMs, validToMs, zones, exemptMids } = index;
  const tid = result.tid;
  const mid = result.mid;
  let n = 0;
  touched.length = 0;
  const matches = result.matches;
  for (let m = 0; m < matches.length; m++) {
    const item = matches[m]!;
    const slot = findAssetSlot(index, item.assetId);
    if (slot === -1) continue;
    const start = item.startMs > 0 ? item.startMs : 0;
    const end = item.endMs < duration ? item.endMs : duration;
    if (end <= start) continue;
    const score = item.score;
    for (let p = index.slotFirst[slot]!, last = p + index.slotCount[slot]!; p < last; p++) {
      const rank = ranks[p]!;
      if (score < minScore[rank]! || t < validFromMs[rank]! || t >= validToMs[rank]!) continue;
      const z = zones[rank]!;
      if (z !== null && !z.has(tid)) continue;
      const x = exemptMids[rank]!;
      if (x !== null && x.has(mid)) continue;
      if (n === candStart.length) growCandidates();
      if (rank >= stampByRank.length) growRanks(rank);
      if (stampByRank[rank] !== generation) {
        stampByRank[rank] = generation;
        headByRank[rank] = -1;
        touched.push(snapshot.rules[rank]!);
      }
      candStart[n] = start;
      candEnd[n] = end;
      candNext[n] = headByRank[rank]!;
      headByRank[rank] = n;
      n++;
    }
  }
  if (n === 0) return PASS;

  // Hits come out in verdict order: touched rules are sorted by rank first (few of them).
  if (touched.length > 1) touched.sort(byRank);
  let hits: Hit[] | undefined;
  for (let k = 0; k < touched.length; k++) {
    const rule = touched[k]!;
    const matchedMs = unionLength(headByRank[rule.rank]!);
    if (matchedMs >= rule.minMatchedMs && matchedMs * 10_000 >= rule.minRatioBp * duration) {
      (hits ??= []).push({ ruleId: rule.id, ownerId: rule.ownerId, action: rule.action, priority: rule.priority, matchedMs });
    }
  }
  touched.length = 0; // drop references to the snapshot's rules
  if (hits === undefined) return PASS;
  return { action: hits[0]!.action, ruleId: hits[0]!.ruleId, hits };
}

const byRank = (a: CompiledRule, b: CompiledRule) => a.rank - b.rank;

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
