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
  /**
   * By rank r, side by side (one cache line per rule): at 4r the generation of
   * the call in which the rule got its first candidate (its chain is this
   * call's), at 4r + 1 and 4r + 2 the chain's head and tail, at 4r + 3 twice
   * the generation of the call that checked the rule's window, zones and
   * exempt uploaders, plus 1 when they let the result through.
   */
  readonly rankState: Int32Array;
  /** Below 2^30, so that twice it plus one fits in an Int32. Never 0 in a call. */
  generation: number;
  candStart: Float64Array;
  candEnd: Float64Array;
  candNext: Int32Array;
  /** Match-item indexes in ascending startMs, when the result's items are not already in that order. */
  order: Uint32Array;
  /** Ranks of the rules with at least one candidate in this call, `touchedCount` of them (at most every rank). */
  readonly touched: Int32Array;
}

/** Where the generation starts again at 1 (after clearing `rankState`): about a billion calls. */
const GENERATION_LIMIT = 0x40000000;

const scratchOf = new WeakMap<RuleSnapshot, Scratch>();

let lastSnapshot: RuleSnapshot | null = null;
let lastScratch: Scratch | null = null;

function scratchFor(snapshot: RuleSnapshot): Scratch {
  if (snapshot === lastSnapshot) return lastScratch!;
  let s = scratchOf.get(snapshot);
  if (s === undefined) {
    const ranks = snapshot.rules.length;
    s = {
      rankState: new Int32Array(4 * ranks), // all 0: the generation is never 0 in a call
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

/** For tests: bring a snapshot's scratch generation to `callsLeft` calls before it starts again. */
export function nearGenerationLimit(snapshot: RuleSnapshot, callsLeft: number): void {
  scratchFor(snapshot).generation = GENERATION_LIMIT - 1 - callsLeft;
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
  if (++s.generation === GENERATION_LIMIT) {
    s.generation = 1;
    s.rankState.fill(0);
  }
  const generation = s.generation;
  const { rankState, touched } = s;
  const index = snapshot.assetIndex;
  const { ranks, rankFields, minRatioBp, zones, exemptMids, slotRanks } = index;
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
    for (let p = slotRanks[4 * slot + 2]!, last = p + slotRanks[4 * slot + 3]!; p < last; p++) {
      const rank = ranks[p]!;
      const f = 4 * rank;
      if (score < rankFields[f]!) continue;
      const checked = rankState[f + 3]!;
      let eligible: number;
      if (checked >> 1 === generation) {
        eligible = checked & 1;
      } else {
        // Once per rule and call: the conditions that do not depend on the match item.
        const z = zones[rank]!, x = exemptMids[rank]!;
        eligible = t < rankFields[f + 1]! || t >= rankFields[f + 2]! || (z !== null && !z.has(tid)) || (x !== null && x.has(mid)) ? 0 : 1;
        rankState[f + 3] = 2 * generation + eligible;
      }
      if (eligible === 0) continue;
      if (n === candStart.length) {
        growCandidates(s);
        ({ candStart, candEnd, candNext } = s);
      }
      candStart[n] = start;
      candEnd[n] = end;
      candNext[n] = -1;
      if (rankState[f] !== generation) {
        rankState[f] = generation;
        rankState[f + 1] = n;
        touched[touchedCount++] = rank;
      } else {
        candNext[rankState[f + 2]!] = n;
      }
      rankState[f + 2] = n;
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
    const matchedMs = unionLength(s, rankState[4 * rank + 1]!);
    if (matchedMs >= rankFields[4 * rank + 3]! && matchedMs * 10_000 >= minRatioBp[rank]! * duration) {
      const rule = rules[rank]!;
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
