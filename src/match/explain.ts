/**
 * Why did (or didn't) a result hit a rule? For every rule that names one of
 * the result's assets (an active asset property), the conditions of spec
 * section 4 in order — active, zone, exempt uploader, matched time, ratio —
 * and either `hit` with the matched time, or the first that failed with both
 * numbers. Pure; reads the snapshot's rule rows, not its matching index, so it
 * also explains the rules the index leaves out (inactive ones).
 */
import { KIND_CODE } from "./rule-table.js";
import type { RuleSnapshot } from "./snapshot.js";
import { ACTION_SEVERITY, type RecognitionResult, type RuleAction } from "./types.js";

export interface RuleExplanation {
  readonly ruleId: number;
  readonly action: RuleAction;
  readonly priority: number;
  readonly hit: boolean;
  /** The matched time, once it was computed (conditions before it passed). */
  readonly matchedMs?: number;
  /** The first condition that failed, with both numbers; absent for a hit. */
  readonly failed?: string;
}

const iso = (ms: number) => new Date(ms).toISOString();

/** Work between two pauses of an explanation run in steps: property rows scanned, or item visits. */
const STEP_ROWS = 16_384;
const STEP_MASK = STEP_ROWS - 1;

/** Most rules one explanation names (a clear error beyond: ask about fewer assets). */
export const EXPLAIN_MAX_RULES = 5_000;

/** A result whose explanation would name more rules than EXPLAIN_MAX_RULES. */
export class ExplainTooLargeError extends Error {
  override name = "ExplainTooLargeError";
}

/**
 * The rules naming the result's assets with their asset ids, and the zones and exempt uploaders of
 * those rules: two passes over the property columns, nothing kept per property.
 */
function* rulesNaming(snapshot: RuleSnapshot, itemsByAsset: ReadonlyMap<number, readonly number[]>, maxRules: number) {
  const p = snapshot.table.properties;
  const named = new Map<number, number[]>();
  for (let i = 0; i < p.length; i++) {
    if ((i & STEP_MASK) === STEP_MASK) yield;
    if (p.kind[i] !== KIND_CODE.asset || !itemsByAsset.has(p.value[i]!) || !snapshot.table.rules.has(p.ruleId[i]!)) continue;
    const ruleId = p.ruleId[i]!;
    const assets = named.get(ruleId);
    if (assets === undefined) {
      if (named.size === maxRules) throw new ExplainTooLargeError(`the result's assets are named by more than ${maxRules} rules: explain fewer assets at a time`);
      named.set(ruleId, [p.value[i]!]);
    } else if (!assets.includes(p.value[i]!)) assets.push(p.value[i]!);
  }
  const zones = new Map<number, number[]>();
  const exempt = new Map<number, number[]>();
  for (let i = 0; i < p.length; i++) {
    if ((i & STEP_MASK) === STEP_MASK) yield;
    const kind = p.kind[i];
    if (kind !== KIND_CODE.zone && kind !== KIND_CODE.exempt_mid) continue;
    const ruleId = p.ruleId[i]!;
    if (!named.has(ruleId)) continue;
    const into = kind === KIND_CODE.zone ? zones : exempt;
    const list = into.get(ruleId);
    if (list === undefined) into.set(ruleId, [p.value[i]!]);
    else list.push(p.value[i]!);
  }
  return { named, zones, exempt };
}

/**
 * Explain each rule naming one of the result's assets, in verdict order. Linear in the result's
 * size: its items are sorted by start once and grouped by asset, and each rule's matched time is a
 * running union over its assets' items in that order (rules sharing their assets and min_score share
 * the computation: a popular asset named by a hundred rules is walked once per distinct min_score).
 */
export function explainResult(snapshot: RuleSnapshot, result: RecognitionResult, options: { maxRules?: number } = {}): RuleExplanation[] {
  const steps = explainSteps(snapshot, result, options);
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
  }
}

/**
 * The same explanation, computed in slices of at most `sliceMs` of the event loop (the rest of the
 * process, the pipeline first, runs between them): what a running instance answers `tort.explain` with.
 */
export async function explainResultInSlices(snapshot: RuleSnapshot, result: RecognitionResult, options: { maxRules?: number; sliceMs: number }): Promise<RuleExplanation[]> {
  const steps = explainSteps(snapshot, result, options);
  let sliceStart = performance.now();
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
    if (performance.now() - sliceStart >= options.sliceMs) {
      await new Promise((resolve) => setImmediate(resolve));
      sliceStart = performance.now();
    }
  }
}

/** The explanation as a generator that pauses every STEP_ROWS units of work. */
function* explainSteps(snapshot: RuleSnapshot, result: RecognitionResult, options: { maxRules?: number }): Generator<void, RuleExplanation[]> {
  const items = result.matches;
  const byStart = Array.from({ length: items.length }, (_, k) => k).sort((a, b) => items[a]!.startMs - items[b]!.startMs || a - b);
  const itemsByAsset = new Map<number, number[]>();
  for (const k of byStart) {
    const list = itemsByAsset.get(items[k]!.assetId);
    if (list === undefined) itemsByAsset.set(items[k]!.assetId, [k]);
    else list.push(k);
  }
  yield;
  const { named, zones, exempt } = yield* rulesNaming(snapshot, itemsByAsset, options.maxRules ?? EXPLAIN_MAX_RULES);

  const t = result.recognizedAtMs;
  const d = result.durationMs;
  /** Items on a set of assets, in start order (one asset: its group as it is). */
  const onAssets = (assets: readonly number[]): readonly number[] =>
    assets.length === 1 ? itemsByAsset.get(assets[0]!)! : assets.flatMap((a) => itemsByAsset.get(a)!).sort((a, b) => items[a]!.startMs - items[b]!.startMs || a - b);
  /** Matched ms of the items at or above `minScore`, and the best score among all of them. */
  const matched = new Map<string, { matchedMs: number; scored: number; best: number }>();
  const matchedOn = (assets: number[], minScore: number) => {
    const key = `${assets.length === 1 ? assets[0] : [...assets].sort((a, b) => a - b).join(",")}|${minScore}`;
    const known = matched.get(key);
    if (known !== undefined) return { ...known, fresh: false };
    let total = 0, curStart = 0, curEnd = -1, scored = 0, best = Number.NEGATIVE_INFINITY;
    for (const k of onAssets(assets)) {
      const item = items[k]!;
      if (item.score > best) best = item.score;
      if (item.score < minScore) continue;
      scored++;
      const s = Math.max(0, item.startMs);
      const e = Math.min(d, item.endMs);
      if (e <= s) continue;
      if (s > curEnd) {
        if (curEnd > curStart) total += curEnd - curStart;
        curStart = s;
        curEnd = e;
      } else if (e > curEnd) curEnd = e;
    }
    if (curEnd > curStart) total += curEnd - curStart;
    const m = { matchedMs: total, scored, best };
    matched.set(key, m);
    return { ...m, fresh: true };
  };

  const out: RuleExplanation[] = [];
  let visits = 0;
  for (const [ruleId, ruleAssets] of named) {
    visits += ruleAssets.length === 1 ? 1 : itemsByAsset.size;
    if (visits >= STEP_ROWS) {
      visits = 0;
      yield;
    }
    const rule = snapshot.table.rules.get(ruleId)!;
    const base = { ruleId, action: rule.action, priority: rule.priority };
    const fail = (failed: string, matchedMs?: number) => out.push({ ...base, hit: false, ...(matchedMs !== undefined ? { matchedMs } : {}), failed });
    if (rule.state !== 1) { fail(`state ${rule.state} != 1 (disabled)`); continue; }
    if (rule.isDeleted !== 0) { fail(`is_deleted ${rule.isDeleted} (deleted)`); continue; }
    if (rule.validFromMs !== null && !(rule.validFromMs <= t)) { fail(`recognizedAt ${iso(t)} < valid_from ${iso(rule.validFromMs)}`); continue; }
    if (rule.validToMs !== null && !(t < rule.validToMs)) { fail(`recognizedAt ${iso(t)} >= valid_to ${iso(rule.validToMs)}`); continue; }
    const z = zones.get(ruleId);
    // A zone value beyond 2^53 is kept as -1: it can match no tid.
    if (z !== undefined && !z.includes(result.tid)) { fail(`tid ${result.tid} not in zones ${z.map((v) => (v < 0 ? "(beyond 2^53)" : v)).join(", ")}`); continue; }
    if ((exempt.get(ruleId) ?? []).includes(result.mid)) { fail(`mid ${result.mid} is an exempt uploader`); continue; }
    const minScore = Number(rule.minScore);
    const { matchedMs, scored, best, fresh } = matchedOn(ruleAssets, minScore);
    if (fresh) visits += items.length;
    if (matchedMs === 0) {
      fail(
        scored === 0
          ? `matched 0 ms: best score ${best} < min_score ${minScore}`
          : `matched 0 ms: every item on its assets starts at or after durationMs ${d}`,
        0,
      );
      continue;
    }
    if (matchedMs < rule.minMatchedMs) { fail(`matched ${matchedMs} ms < min_matched_ms ${rule.minMatchedMs}`, matchedMs); continue; }
    if (matchedMs * 10_000 < rule.minRatioBp * d) {
      fail(`matched ${matchedMs} ms of durationMs ${d} = ${Math.floor((matchedMs * 10_000) / d)} bp < min_ratio_bp ${rule.minRatioBp}`, matchedMs);
      continue;
    }
    out.push({ ...base, hit: true, matchedMs });
  }
  return out.sort((a, b) => b.priority - a.priority || ACTION_SEVERITY[b.action] - ACTION_SEVERITY[a.action] || a.ruleId - b.ruleId);
}

/** One line per rule, as `tortmatch explain` prints it. */
export function formatExplanation(e: RuleExplanation): string {
  const head = `rule ${e.ruleId} (${e.action}, priority ${e.priority}):`;
  return e.hit ? `${head} hit, matched ${e.matchedMs} ms` : `${head} ${e.failed}`;
}
