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

/** Length of the union of intervals, overlaps counted once. */
function unionMs(intervals: [number, number][]): number {
  intervals.sort((a, b) => a[0] - b[0]);
  let total = 0;
  let cur: [number, number] | null = null;
  for (const [s, e] of intervals) {
    if (cur === null || s > cur[1]) {
      if (cur !== null) total += cur[1] - cur[0];
      cur = [s, e];
    } else if (e > cur[1]) cur[1] = e;
  }
  return cur === null ? total : total + cur[1] - cur[0];
}

/** Explain each rule naming one of the result's assets, in verdict order. */
export function explainResult(snapshot: RuleSnapshot, result: RecognitionResult): RuleExplanation[] {
  const assets = new Set(result.matches.map((m) => m.assetId));
  const p = snapshot.table.properties;
  // A(R) restricted to the result's assets, then Z(R) and E(R) of those rules.
  const named = new Map<number, Set<number>>();
  for (let i = 0; i < p.length; i++) {
    if (p.kind[i] === KIND_CODE.asset && assets.has(p.value[i]!) && snapshot.table.rules.has(p.ruleId[i]!)) {
      const set = named.get(p.ruleId[i]!) ?? new Set<number>();
      set.add(p.value[i]!);
      named.set(p.ruleId[i]!, set);
    }
  }
  const zones = new Map<number, number[]>();
  const exempt = new Map<number, number[]>();
  for (let i = 0; i < p.length; i++) {
    const ruleId = p.ruleId[i]!;
    if (!named.has(ruleId)) continue;
    const into = p.kind[i] === KIND_CODE.zone ? zones : p.kind[i] === KIND_CODE.exempt_mid ? exempt : null;
    if (into !== null) into.set(ruleId, [...(into.get(ruleId) ?? []), p.value[i]!]);
  }

  const t = result.recognizedAtMs;
  const d = result.durationMs;
  const out: RuleExplanation[] = [];
  for (const [ruleId, ruleAssets] of named) {
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
    const onAssets = result.matches.filter((m) => ruleAssets.has(m.assetId));
    const scored = onAssets.filter((m) => m.score >= minScore);
    const intervals = scored.map((m) => [Math.max(0, m.startMs), Math.min(d, m.endMs)] as [number, number]).filter(([s, e]) => e > s);
    const matchedMs = unionMs(intervals);
    if (matchedMs === 0) {
      fail(
        scored.length === 0
          ? `matched 0 ms: best score ${Math.max(...onAssets.map((m) => m.score))} < min_score ${minScore}`
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
