/**
 * The one place an instance counts what happened to its messages: the pipeline's settlements, the
 * dead letters by class, and the exhausted-deliveries worker's settlements. /metrics, the status page
 * and the fleet's stats all read these counts, so they cannot disagree.
 */
import { VERDICT_ACTIONS, type VerdictAction } from "../match/types.js";
import { DEAD_LETTER_CLASSES, SETTLEMENT_OUTCOMES, type DeadLetterClass, type SettlementOutcome } from "../verdict/decide-settlement.js";

/** How a message's settlement ended (see verdict/decide-settlement.ts). */
export type Outcome = SettlementOutcome;
export const OUTCOMES: readonly Outcome[] = SETTLEMENT_OUTCOMES;

const zeroes = <K extends string>(keys: readonly K[]) => Object.fromEntries(keys.map((k) => [k, 0])) as Record<K, number>;

export interface ServiceStats {
  /** Messages pulled. */
  received: number;
  /** Messages done with for good: verdict published (or known already) or dead-lettered. */
  readonly settled: number;
  outcomes: Record<Outcome, number>;
  verdicts: Record<VerdictAction, number>;
  /** Dead letters written, by class of reason: the pipeline's and the exhausted-deliveries worker's. */
  deadLetters: Record<DeadLetterClass, number>;
  /** Inputs whose deliveries ran out, settled by the exhausted-deliveries worker, by outcome. */
  exhausted: Record<Outcome, number>;
  /** Inputs the exhausted-deliveries worker could not settle either, after its own last delivery. */
  givenUp: number;
  /** Messages between pull and settlement now, and the most seen since the last reset. */
  inFlight: number;
  /** Bytes of the messages between pull and settlement now (as the byte budget counts them). */
  heldBytes: number;
  maxInFlight: number;
  /** Messages waiting for the first snapshot now, and the most that ever waited. */
  waiting: number;
  peakWaiting: number;
  setWaiting(waiting: number): void;
  /** `bytes`: the message's held bytes (0 when not counted). */
  messageReceived(bytes?: number): void;
  messageSettled(outcome: Outcome, action?: VerdictAction, deadLetter?: DeadLetterClass, bytes?: number): void;
  exhaustedSettled(outcome: Outcome, deadLetter?: DeadLetterClass): void;
  exhaustedGaveUp(): void;
  /** Start a new window for `maxInFlight` (returns the old maximum). */
  resetMaxInFlight(): number;
}

export function createServiceStats(): ServiceStats {
  return {
    received: 0,
    outcomes: zeroes(OUTCOMES),
    verdicts: zeroes(VERDICT_ACTIONS),
    deadLetters: zeroes(DEAD_LETTER_CLASSES),
    exhausted: zeroes(OUTCOMES),
    givenUp: 0,
    inFlight: 0,
    heldBytes: 0,
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
    messageReceived(bytes = 0) {
      this.received++;
      this.inFlight++;
      this.heldBytes += bytes;
      if (this.inFlight > this.maxInFlight) this.maxInFlight = this.inFlight;
    },
    messageSettled(outcome, action, deadLetter, bytes = 0) {
      this.inFlight--;
      this.heldBytes -= bytes;
      this.outcomes[outcome]++;
      if (action !== undefined) this.verdicts[action]++;
      if (deadLetter !== undefined) this.deadLetters[deadLetter]++;
    },
    exhaustedSettled(outcome, deadLetter) {
      this.exhausted[outcome]++;
      if (deadLetter !== undefined) this.deadLetters[deadLetter]++;
    },
    exhaustedGaveUp() {
      this.givenUp++;
    },
    resetMaxInFlight() {
      const max = this.maxInFlight;
      this.maxInFlight = this.inFlight;
      return max;
    },
  };
}
