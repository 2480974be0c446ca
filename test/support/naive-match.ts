/**
 * Spec section 4 read literally, for tests to check the matcher (and whatif)
 * against: no index, no scratch arrays, BigInt for property values, the
 * contract-breaking rows of section 2 left out.
 */
import type { PropertyRow, RuleRow } from "../../src/match/rule-table.js";
import type { Decision, Hit, RecognitionResult, RuleAction } from "../../src/match/types.js";

const SEVERITY: Record<string, number> = { block: 4, limit: 3, review: 2, claim: 1 };
const isDigits = (s: string) => /^[0-9]+$/.test(s);

/** Spec section 4, read literally. */
export function naiveMatch(rules: readonly RuleRow[], properties: readonly PropertyRow[], r: RecognitionResult): Decision {
  return prepareNaiveMatch(rules, properties)(r);
}

/**
 * The same, with the rows grouped by rule once for many results (the nemesis checks thousands of
 * verdicts against each rule set). The rows must not change while the matcher is used.
 */
export function prepareNaiveMatch(rules: readonly RuleRow[], properties: readonly PropertyRow[]): (r: RecognitionResult) => Decision {
  const kept = new Map<number, RuleRow>();
  for (const rule of rules) if (rule.action in SEVERITY && rule.minRatioBp <= 10_000) kept.set(rule.id, rule);
  const byRule = new Map<number, PropertyRow[]>();
  for (const p of properties) {
    const list = byRule.get(p.ruleId) ?? [];
    list.push(p);
    byRule.set(p.ruleId, list);
  }
  return (r) => matchLiterally(kept, byRule, r);
}

function matchLiterally(kept: ReadonlyMap<number, RuleRow>, byRule: ReadonlyMap<number, PropertyRow[]>, r: RecognitionResult): Decision {
  const t = Date.parse(r.recognizedAt);
  const hits: Hit[] = [];
  for (const rule of kept.values()) {
    if (rule.state !== 1 || rule.isDeleted !== 0) continue;
    if (rule.validFromMs !== null && !(rule.validFromMs <= t)) continue;
    if (rule.validToMs !== null && !(t < rule.validToMs)) continue;
    const mine = (byRule.get(rule.id) ?? []).filter(
      (p) => p.state === 1 && p.isDeleted === 0 && ["asset", "zone", "exempt_mid"].includes(p.kind) && isDigits(p.value),
    );
    const values = (kind: string) => mine.filter((p) => p.kind === kind).map((p) => BigInt(p.value));
    const A = values("asset"), Z = values("zone"), E = values("exempt_mid");
    if (Z.length > 0 && !Z.includes(BigInt(r.tid))) continue;
    if (E.includes(BigInt(r.mid))) continue;
    const minScore = Number(rule.minScore);
    const intervals = r.matches
      .filter((m) => A.includes(BigInt(m.assetId)) && m.score >= minScore)
      .map((m) => [Math.max(0, m.startMs), Math.min(r.durationMs, m.endMs)] as const)
      .filter(([s, e]) => e > s)
      .sort((a, b) => a[0] - b[0]);
    let M = 0;
    let cur: [number, number] | null = null;
    for (const [s, e] of intervals) {
      if (cur === null || s > cur[1]) {
        if (cur !== null) M += cur[1] - cur[0];
        cur = [s, e];
      } else if (e > cur[1]) cur[1] = e;
    }
    if (cur !== null) M += cur[1] - cur[0];
    if (M > 0 && M >= rule.minMatchedMs && BigInt(M) * 10_000n >= BigInt(rule.minRatioBp) * BigInt(r.durationMs)) {
      hits.push({ ruleId: rule.id, ownerId: rule.ownerId, action: rule.action as RuleAction, priority: rule.priority, matchedMs: M });
    }
  }
  hits.sort((a, b) => b.priority - a.priority || SEVERITY[b.action]! - SEVERITY[a.action]! || a.ruleId - b.ruleId);
  return hits.length === 0 ? { action: "pass", ruleId: null, hits: [] } : { action: hits[0]!.action, ruleId: hits[0]!.ruleId, hits };
}

