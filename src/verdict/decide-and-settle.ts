/**
 * One input's way from its decoded body to its settlement: decide (the verdict against the rule
 * snapshot, or the dead letter for an invalid body), then settle (publish, then ack, nak or term).
 * The pipeline and the exhausted-deliveries worker both take this one step.
 */
import { decideVerdict } from "../match/match-result.js";
import type { RuleSnapshot } from "../match/snapshot.js";
import type { Checked, RecognitionResult } from "../match/types.js";
import { settleMessage, type Settleable, type Settled, type SettleOptions } from "./settle-message.js";

export function decideAndSettle(
  input: Settleable,
  checked: Checked<RecognitionResult>,
  snapshot: RuleSnapshot,
  decidedAt: string,
  o: SettleOptions,
  /** Told how long matching took, in seconds (valid inputs only). */
  onMatched?: (seconds: number) => void,
): Promise<Settled> {
  const startedAt = performance.now();
  const decided = decideVerdict(checked, snapshot, input.source, decidedAt);
  if (decided.ok) onMatched?.((performance.now() - startedAt) / 1000);
  return settleMessage(input, decided, o);
}
