/** Counters of what the pipeline did: for logs, summaries, tests and (later) /metrics. */
import { VERDICT_ACTIONS, type VerdictAction } from "../match/types.js";

import type { SettlementOutcome } from "../verdict/decide-settlement.js";

/** How a message's settlement ended (see verdict/decide-settlement.ts). */
export type Outcome = SettlementOutcome;
export const OUTCOMES: readonly Outcome[] = ["verdict", "duplicate-verdict", "dead-letter", "retry", "stuck"];

export interface ServiceStats {
  /** Messages pulled. */
  received: number;
  /** Messages done with for good: verdict published (or known already) or dead-lettered. */
  readonly settled: number;
  outcomes: Record<Outcome, number>;
  verdicts: Record<VerdictAction, number>;
  /** Messages between pull and settlement now, and the most seen since the last reset. */
  inFlight: number;
  maxInFlight: number;
  /** Messages waiting for the first snapshot now, and the most that ever waited. */
  waiting: number;
  peakWaiting: number;
  setWaiting(waiting: number): void;
  messageReceived(): void;
  messageSettled(outcome: Outcome, action?: VerdictAction): void;
  /** Start a new window for `maxInFlight` (returns the old maximum). */
  resetMaxInFlight(): number;
}

export function createServiceStats(): ServiceStats {
  return {
    received: 0,
    outcomes: { verdict: 0, "duplicate-verdict": 0, "dead-letter": 0, retry: 0, stuck: 0 },
    verdicts: Object.fromEntries(VERDICT_ACTIONS.map((a) => [a, 0])) as Record<VerdictAction, number>,
    inFlight: 0,
    maxInFlight: 0,
    waiting: 0,
    peakWaiting: 0,
    get settled() {
      return this.outcomes.verdict + this.outcomes["duplicate-verdict"] + this.outcomes["dead-letter"];
    },
    setWaiting(waiting) {
      this.waiting = waiting;
      if (waiting > this.peakWaiting) this.peakWaiting = waiting;
    },
    messageReceived() {
      this.received++;
      this.inFlight++;
      if (this.inFlight > this.maxInFlight) this.maxInFlight = this.inFlight;
    },
    messageSettled(outcome, action) {
      this.inFlight--;
      this.outcomes[outcome]++;
      if (action !== undefined) this.verdicts[action]++;
    },
    resetMaxInFlight() {
      const max = this.maxInFlight;
      this.maxInFlight = this.inFlight;
      return max;
    },
  };
}
