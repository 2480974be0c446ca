/**
 * The matching of spec section 4: (snapshot, result) → decision. Pure and
 * synchronous; it never awaits, never logs and never sees raw bytes.
 */
import { findAssetSlot, type RuleSnapshot } from "./snapshot.js";
import type { Checked, Decision, Hit, RecognitionResult, Verdict, VerdictSource } from "./types.js";

const PASS: Decision = Object.freeze({ action: "pass", ruleId: null, hits: Object.freeze([]) as readonly Hit[] });

/**
 * Scratch space of one snapshot's matcher, reused across calls: the matcher is
 * synchronous, so no two calls ever share it. Everything indexed by rule rank
 * is sized from the snapshot when the scratch is made, so nothing indexed by
 * rank is ever replaced inside a call. Candidates (one per rule and match item
 * that passes the rule's filters) are chained per rule from head to tail in
 * ascending start order; the chain heads are stamped with the call's
 * generation, so nothing is cleared between calls.
 */
interface Scratch {
  readonly headByRank: Int32Array;
  readonly tailByRank: Int32Array;
  readonly stampByRank: Uint32Array;
  /** Per rank and call: whether the rule's window, zones and exempt uploaders let the result through (1) or not (0), valid when `checkedByRank` holds the generation. */
  readonly eligibleByRank: Uint8Array;
  readonly checkedByRank: Uint32Array;
  generation: number;
  candStart: Float64Array;
  candEnd: Float64Array;
  candNext: Int32Array;
  /** Match-item indexes in ascending startMs, when the result's items are not already in that order. */
  order: Uint32Array;
  /** Ranks of the rules with at least one candidate in this call, `touchedCount` of them (at most every rank). */
  readonly touched: Int32Array;
}

const scratchOf = new WeakMap<RuleSnapshot, Scratch>();

let lastSnapshot: RuleSnapshot | null = null;
let lastScratch: Scratch | null = null;

function scratchFor(snapshot: RuleSnapshot): Scratch {
  if (snapshot === lastSnapshot) return lastScratch!;
  let s = scratchOf.get(snapshot);
  if (s === undefined) {
    const ranks = snapshot.rules.length;
    s = {
      headByRank: new Int32Array(ranks),
      tailByRank: new Int32Array(ranks),
      stampByRank: new Uint32Array(ranks), // all 0: the generation is never 0 below
      eligibleByRank: new Uint8Array(ranks),
      checkedByRank: new Uint32Array(ranks),
      generation: 0,
      candStart: new Float64Array(256),
      candEnd: new Float64Array(256),
      candNext: new Int32Array(256),
      order: new Uint32Array(64),
      touched: new Int32Array(ranks),
    };
    scratchOf.set(snapshot, s);
  }
  lastSnapshot = snapshot;
  lastScratch = s;
  return s;
}

/** Double the candidate arrays, keeping what they hold (chains stay valid: they are indexes). */
function growCandidates(s: Scratch): void {
  const size = s.candStart.length * 2;
  const start = new Float64Array(size), end = new Float64Array(size), next = new Int32Array(size);
  start.set(s.candStart);
  end.set(s.candEnd);
  next.set(s.candNext);
  s.candStart = start;
  s.candEnd = end;
  s.candNext = next;
}

/**
 * The order to visit match items in: ascending startMs, so that every rule's
 * chain comes out sorted and its union is one linear pass. Null when the items
 * already are in that order (the usual case); else an O(n log n) sort.
 */
function itemOrder(s: Scratch, matches: RecognitionResult["matches"]): Uint32Array | null {
  let sorted = true;
  for (let m = 1; m < matches.length; m++) {
    if (matches[m]!.startMs < matches[m - 1]!.startMs) {
      sorted = false;
      break;
    }
  }
  if (sorted) return null;
  if (s.order.length < matches.length) s.order = new Uint32Array(Math.max(matches.length, s.order.length * 2));
  const order = s.order.subarray(0, matches.length);
  for (let m = 0; m < matches.length; m++) order[m] = m;
  order.sort((a, b) => matches[a]!.startMs - matches[b]!.startMs || a - b);
  return order;
}

/** Total length of the union of one rule's intervals (a chain in ascending start order), overlaps counted once. */
function unionLength(s: Scratch, first: number): number {
  const { candStart, candEnd, candNext } = s;
  let total = 0;
  let runStart = candStart[first]!, runEnd = candEnd[first]!;
  for (let c = candNext[first]!; c !== -1; c = candNext[c]!) {
    const start = candStart[c]!, end = candEnd[c]!;
    if (start > runEnd) {
      total += runEnd - runStart;
      runStart = start;
      runEnd = end;
    } else if (end > runEnd) {
      runEnd = end;
    }
  }
  return total + runEnd - runStart;
}

/** Decide which rules hit a result and which action wins. */
export function matchResult(snapshot: RuleSnapshot, result: RecognitionResult): Decision {
  const s = scratchFor(snapshot);
  const t = result.recognizedAtMs;
  const duration = result.durationMs;
  if (++s.generation === 0xffffffff) {
    s.generation = 1;
    s.stampByRank.fill(0);
    s.checkedByRank.fill(0);
  }
  const generation = s.generation;
  const { headByRank, tailByRank, stampByRank, eligibleByRank, checkedByRank, touched } = s;
  const index = snapshot.assetIndex;
  const { ranks, minScore, validFromMs, validToMs, zones, exemptMids } = index;
  const tid = result.tid;
  const mid = result.mid;
  let n = 0;
  let touchedCount = 0;
  const matches = result.matches;
  const order = itemOrder(s, matches);
  // Local views of the candidate arrays, taken again whenever they grow.
  let candStart = s.candStart, candEnd = s.candEnd, candNext = s.candNext;
  for (let k = 0; k < matches.length; k++) {
    const item = matches[order === null ? k : order[k]!]!;
    const slot = findAssetSlot(index, item.assetId);
    if (slot === -1) continue;
    const start = item.startMs > 0 ? item.startMs : 0;
    const end = item.endMs < duration ? item.endMs : duration;
    if (end <= start) continue;
    const score = item.score;
    for (let p = index.slotFirst[slot]!, last = p + index.slotCount[slot]!; p < last; p++) {
      const rank = ranks[p]!;
      if (score < minScore[rank]!) continue;
      if (checkedByRank[rank] !== generation) {
        // Once per rule and call: the conditions that do not depend on the match item.
        checkedByRank[rank] = generation;
        const z = zones[rank]!, x = exemptMids[rank]!;
        eligibleByRank[rank] = t < validFromMs[rank]! || t >= validToMs[rank]! || (z !== null && !z.has(tid)) || (x !== null && x.has(mid)) ? 0 : 1;
      }
      if (eligibleByRank[rank] === 0) continue;
      if (n === candStart.length) {
        growCandidates(s);
        ({ candStart, candEnd, candNext } = s);
      }
      candStart[n] = start;
      candEnd[n] = end;
      candNext[n] = -1;
      if (stampByRank[rank] !== generation) {
        stampByRank[rank] = generation;
        headByRank[rank] = n;
        touched[touchedCount++] = rank;
      } else {
        candNext[tailByRank[rank]!] = n;
      }
      tailByRank[rank] = n;
      n++;
    }
  }
  if (n === 0) return PASS;

  // Hits come out in verdict order: touched ranks are sorted first (usually a handful).
  if (touchedCount > 1) sortRanks(touched, touchedCount);
  const rules = snapshot.rules;
  let hits: Hit[] | undefined;
  for (let k = 0; k < touchedCount; k++) {
    const rank = touched[k]!;
    const matchedMs = unionLength(s, headByRank[rank]!);
    const rule = rules[rank]!;
    if (matchedMs >= rule.minMatchedMs && matchedMs * 10_000 >= rule.minRatioBp * duration) {
      const hit: Hit = { ruleId: rule.id, ownerId: rule.ownerId, action: rule.action, priority: rule.priority, matchedMs };
      if (hits === undefined) hits = [hit];
      else hits.push(hit);
    }
  }
  if (hits === undefined) return PASS;
  return { action: hits[0]!.action, ruleId: hits[0]!.ruleId, hits };
}

/** Sort the first `count` ranks ascending: insertion sort for the usual handful, the built-in sort beyond. */
function sortRanks(ranks: Int32Array, count: number): void {
  if (count > 32) {
    ranks.subarray(0, count).sort();
    return;
  }
  for (let i = 1; i < count; i++) {
    const r = ranks[i]!;
    let j = i - 1;
    while (j >= 0 && ranks[j]! > r) {
      ranks[j + 1] = ranks[j]!;
      j--;
    }
    ranks[j + 1] = r;
  }
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

/**
 * The match stage of the pipeline: a decoded input and the snapshot in
 * service → its verdict, or the reason it is invalid (for the dead letter).
 */
export function decideVerdict(
  checked: Checked<RecognitionResult>,
  snapshot: RuleSnapshot,
  source: VerdictSource | null,
  decidedAt: string,
): { readonly ok: true; readonly verdict: Verdict } | { readonly ok: false; readonly reason: string } {
  if (!checked.ok) return checked;
  return { ok: true, verdict: buildVerdict(checked.value, matchResult(snapshot, checked.value), snapshot.version, source, decidedAt) };
}
