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
 * is sized from the snapshot when the scratch is made. Match items are visited
 * in ascending start order, so each rule's matched time is a running union
 * (the current run of overlapping intervals, and the total of the runs before
 * it): no list of intervals is kept, whatever the number of items. Marks are
 * stamped with the call's generation, so nothing is cleared between calls.
 */
interface Scratch {
  /**
   * By rank r: at 2r the generation of the call in which the rule got its
   * first interval (its run below is this call's), at 2r + 1 twice the
   * generation of the call that checked the rule's window, zones and exempt
   * uploaders, plus 1 when they let the result through.
   */
  readonly rankMark: Int32Array;
  /** By rank r: the current run's start (3r) and end (3r + 1), and the length of the runs before it (3r + 2). */
  readonly rankRun: Float64Array;
  /** Below 2^30, so that twice it plus one fits in an Int32. Never 0 in a call. */
  generation: number;
  /** Match-item indexes in ascending startMs, when the result's items are not already in that order. */
  order: Uint32Array;
  /** Ranks of the rules with at least one interval in this call, `touchedCount` of them (at most every rank). */
  readonly touched: Int32Array;
}

/** Where the generation starts again at 1 (after clearing `rankMark`): about a billion calls. */
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
      rankMark: new Int32Array(2 * ranks), // all 0: the generation is never 0 in a call
      rankRun: new Float64Array(3 * ranks),
      generation: 0,
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

/** Up to this many items, the order is an insertion sort in place; beyond, the built-in sort. */
const INSERTION_SORT_MAX = 16;

/**
 * The order to visit match items in: ascending startMs (ties in item order),
 * so that every rule's intervals arrive sorted and its union is one running
 * pass. Null when the items already are in that order; else the first
 * `matches.length` entries of the scratch order: an insertion sort for the
 * usual handful of items (no comparator calls, no subarray), an O(n log n)
 * sort beyond.
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
  const n = matches.length;
  if (s.order.length < n) s.order = new Uint32Array(Math.max(n, s.order.length * 2));
  const order = s.order;
  if (n > INSERTION_SORT_MAX) {
    const part = order.subarray(0, n);
    for (let m = 0; m < n; m++) part[m] = m;
    part.sort((a, b) => matches[a]!.startMs - matches[b]!.startMs || a - b);
    return order;
  }
  order[0] = 0;
  for (let i = 1; i < n; i++) {
    // Stable: an item moves only past items that start strictly later.
    const startMs = matches[i]!.startMs;
    let j = i - 1;
    while (j >= 0 && matches[order[j]!]!.startMs > startMs) {
      order[j + 1] = order[j]!;
      j--;
    }
    order[j + 1] = i;
  }
  return order;
}

/** Decide which rules hit a result and which action wins. */
export function matchResult(snapshot: RuleSnapshot, result: RecognitionResult): Decision {
  const s = scratchFor(snapshot);
  const t = result.recognizedAtMs;
  const duration = result.durationMs;
  if (++s.generation === GENERATION_LIMIT) {
    s.generation = 1;
    s.rankMark.fill(0);
  }
  const generation = s.generation;
  const { rankMark, rankRun, touched } = s;
  const index = snapshot.assetIndex;
  const { ranks, rankFields, minRatioBp, zones, exemptMids, slotRanks } = index;
  const tid = result.tid;
  const mid = result.mid;
  let touchedCount = 0;
  const matches = result.matches;
  const order = itemOrder(s, matches);
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
      const checked = rankMark[2 * rank + 1]!;
      let eligible: number;
      if (checked >> 1 === generation) {
        eligible = checked & 1;
      } else {
        // Once per rule and call: the conditions that do not depend on the match item.
        const z = zones[rank]!, x = exemptMids[rank]!;
        eligible = t < rankFields[f + 1]! || t >= rankFields[f + 2]! || (z !== null && !z.has(tid)) || (x !== null && x.has(mid)) ? 0 : 1;
        rankMark[2 * rank + 1] = 2 * generation + eligible;
      }
      if (eligible === 0) continue;
      const r = 3 * rank;
      if (rankMark[2 * rank] !== generation) {
        // The rule's first interval in this call.
        rankMark[2 * rank] = generation;
        rankRun[r] = start;
        rankRun[r + 1] = end;
        rankRun[r + 2] = 0;
        touched[touchedCount++] = rank;
      } else if (start > rankRun[r + 1]!) {
        // A gap: the run so far is done.
        rankRun[r + 2] = rankRun[r + 2]! + rankRun[r + 1]! - rankRun[r]!;
        rankRun[r] = start;
        rankRun[r + 1] = end;
      } else if (end > rankRun[r + 1]!) {
        rankRun[r + 1] = end;
      }
    }
  }
  if (touchedCount === 0) return PASS;

  // Hits come out in verdict order: touched ranks are sorted first (usually a handful).
  if (touchedCount > 1) sortRanks(touched, touchedCount);
  const rules = snapshot.rules;
  let hits: Hit[] | undefined;
  for (let k = 0; k < touchedCount; k++) {
    const rank = touched[k]!;
    const r = 3 * rank;
    const matchedMs = rankRun[r + 2]! + rankRun[r + 1]! - rankRun[r]!;
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
