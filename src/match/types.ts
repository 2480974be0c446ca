/** The domain words of spec sections 2–5, as types. Pure: no I/O here. */

export const RULE_ACTIONS = ["block", "limit", "review", "claim"] as const;
/** What a rule asks for when it hits. */
export type RuleAction = (typeof RULE_ACTIONS)[number];
/** A verdict's action: the winning rule's action, or `pass` when nothing hits. */
export type VerdictAction = RuleAction | "pass";
export const VERDICT_ACTIONS: readonly VerdictAction[] = [...RULE_ACTIONS, "pass"];

/** Severity used to order hits of equal priority (spec section 4). */
export const ACTION_SEVERITY: Readonly<Record<RuleAction, number>> = {
  block: 4,
  limit: 3,
  review: 2,
  claim: 1,
};

export const PROPERTY_KINDS = ["asset", "zone", "exempt_mid"] as const;
export type PropertyKind = (typeof PROPERTY_KINDS)[number];

/** One match item of a recognition result. */
export interface MatchItem {
  readonly assetId: number;
  readonly startMs: number;
  readonly endMs: number;
  readonly score: number;
}

/** A validated recognition result (spec section 3). */
export interface RecognitionResult {
  readonly aid: number;
  readonly cid: number;
  readonly mid: number;
  readonly tid: number;
  readonly durationMs: number;
  readonly recognizedAt: string;
  /** `recognizedAt` as epoch milliseconds: the instant `t` of spec section 4. */
  readonly recognizedAtMs: number;
  readonly matches: readonly MatchItem[];
}

/** One rule that hit, in verdict order. */
export interface Hit {
  readonly ruleId: number;
  readonly ownerId: number;
  readonly action: RuleAction;
  readonly priority: number;
  readonly matchedMs: number;
}

/** What the matcher decides for one result. */
export interface Decision {
  readonly action: VerdictAction;
  readonly ruleId: number | null;
  readonly hits: readonly Hit[];
}

/** Where a verdict's input came from; null for a replay. */
export interface VerdictSource {
  readonly stream: string;
  readonly seq: number;
}

/** The published verdict (spec section 5). */
export interface Verdict extends Decision {
  readonly aid: number;
  readonly cid: number;
  readonly mid: number;
  readonly rulesVersion: string;
  readonly source: VerdictSource | null;
  readonly decidedAt: string;
}

/** Outcomes are values: a rejected input carries a one-line reason. */
export type Checked<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: string };
