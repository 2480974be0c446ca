/**
 * What to do next with one message, as a pure decision from what is known so
 * far: the decode outcome, the delivery count, and the outcomes of the verdict
 * and dead-letter publishes made for this delivery. The executor
 * (settle-message.ts) performs each step and asks again, until the answer is
 * an ack, a nak or a term. No I/O here.
 *
 * The rules that keep a result from being lost or doubled (spec sections 5, 6):
 * - a verdict is acked only after its PubAck (stored, or known as a duplicate);
 * - before the final delivery, a failed publish is nak'ed with a delay;
 * - on the final delivery (TORT_MAX_DELIVER; the consumer allows one more, so
 *   the service always sees a delivery it can settle), a publish whose outcome
 *   is unknown (a timeout: it may have been stored) is retried — the Msg-Id
 *   makes a retry safe — and never ends in a dead letter; only a publish the
 *   stream refused (it answered with an error) becomes a dead letter;
 * - a redelivery that comes later than the duplicate window (counted from the
 *   input's storage time: no verdict for it can be older) first asks the
 *   verdict stream whether its verdict exists, and acks it as a duplicate if so;
 * - a message that cannot be settled on its final delivery is left to the
 *   exhausted-deliveries worker ("stuck"), which settles it once the server
 *   gives up on it.
 */

/** How one JetStream publish ended. */
export type PublishOutcome =
  | { readonly kind: "stored" }
  | { readonly kind: "duplicate" }
  /** `refused`: the stream answered with an error, nothing was stored. `unknown`: no answer (timeout, no responders, connection lost): it may have been stored. */
  | { readonly kind: "failed"; readonly certainty: "refused" | "unknown"; readonly error: string };

export interface SettlementFacts {
  /** The decode outcome: a valid result, or the one-line reason it is invalid. */
  readonly decoded: { readonly ok: true } | { readonly ok: false; readonly reason: string };
  /** This delivery's count, from 1. */
  readonly delivery: number;
  /** The last delivery the service settles for good (TORT_MAX_DELIVER). */
  readonly finalDelivery: number;
  /** Verdict publishes on the final delivery, at most. */
  readonly maxPublishAttempts: number;
  /** Outcomes of this delivery's verdict publishes so far, in order. */
  readonly verdictAttempts: readonly PublishOutcome[];
  /** Outcome of this delivery's dead-letter publish, once made. */
  readonly deadLetter?: PublishOutcome;
  /**
   * A redelivery of an input stored longer ago than the verdict stream's
   * duplicate window: a verdict published for it earlier would no longer be
   * caught by its Msg-Id, so the verdict stream is asked first.
   */
  readonly late?: boolean;
  /** The verdict stream's answer for a late redelivery, once asked. */
  readonly lookup?: "found" | "absent" | "unknown";
}

/** How a message ended, for counting. `stuck`: left unsettled on its final delivery, for the exhausted-deliveries worker. */
/** How a message's settlement ends: the one list of outcomes (metrics, the status page and the fleet count by it). */
export const SETTLEMENT_OUTCOMES = ["verdict", "duplicate-verdict", "dead-letter", "retry", "stuck"] as const;
export type SettlementOutcome = (typeof SETTLEMENT_OUTCOMES)[number];

export type SettlementStep =
  | { readonly do: "lookup-verdict" }
  | { readonly do: "publish-verdict" }
  | { readonly do: "publish-dead-letter"; readonly reason: string }
  | { readonly do: "ack"; readonly outcome: "verdict" | "duplicate-verdict" }
  | { readonly do: "term"; readonly outcome: "dead-letter" }
  | { readonly do: "nak"; readonly outcome: "retry" | "stuck"; readonly why: string };

const succeeded = (o: PublishOutcome | undefined) => o !== undefined && o.kind !== "failed";

/** The next step for a message. Pure. */
export function decideSettlement(f: SettlementFacts): SettlementStep {
  const final = f.delivery >= f.finalDelivery;
  const unsettled = final ? ("stuck" as const) : ("retry" as const);

  if (!f.decoded.ok) {
    if (f.deadLetter === undefined) return { do: "publish-dead-letter", reason: f.decoded.reason };
    if (succeeded(f.deadLetter)) return { do: "term", outcome: "dead-letter" };
    return { do: "nak", outcome: unsettled, why: `dead letter not published: ${errorOf(f.deadLetter)}` };
  }

  const last = f.verdictAttempts[f.verdictAttempts.length - 1];
  if (last === undefined) {
    // Past the duplicate window, the Msg-Id no longer guards against a second verdict: look first.
    if (f.late === true && f.lookup === undefined) return { do: "lookup-verdict" };
    if (f.lookup === "found") return { do: "ack", outcome: "duplicate-verdict" };
    return { do: "publish-verdict" };
  }
  if (last.kind === "stored") return { do: "ack", outcome: "verdict" };
  if (last.kind === "duplicate") return { do: "ack", outcome: "duplicate-verdict" };

  if (!final) return { do: "nak", outcome: "retry", why: `verdict not published: ${last.error}` };
  // The final delivery: never a dead letter while any attempt may have stored the verdict.
  const mayHaveStored = f.verdictAttempts.some((a) => a.kind === "failed" && a.certainty === "unknown");
  if (mayHaveStored) {
    if (f.verdictAttempts.length < f.maxPublishAttempts) return { do: "publish-verdict" };
    return { do: "nak", outcome: "stuck", why: `verdict publish outcome unknown after ${f.verdictAttempts.length} attempts: ${last.error}` };
  }
  if (f.deadLetter === undefined) {
    return { do: "publish-dead-letter", reason: `verdict publish refused on delivery ${f.delivery} of ${f.finalDelivery}: ${last.error}` };
  }
  if (succeeded(f.deadLetter)) return { do: "term", outcome: "dead-letter" };
  return { do: "nak", outcome: "stuck", why: `dead letter not published: ${errorOf(f.deadLetter)}` };
}

const errorOf = (o: PublishOutcome | undefined) => (o?.kind === "failed" ? o.error : "no outcome");

/** The small fixed set of dead-letter reasons, for counting (`tortmatch_dead_letters_total{reason}`). */
export const DEAD_LETTER_CLASSES = ["invalid_json", "invalid_utf8", "too_large", "invalid_field", "publish_refused"] as const;
export type DeadLetterClass = (typeof DEAD_LETTER_CLASSES)[number];

/** The class of a dead letter's one-line reason (as decode and decideSettlement word them). */
export function deadLetterClass(reason: string): DeadLetterClass {
  if (reason.startsWith("body: not JSON")) return "invalid_json";
  if (reason.startsWith("body: not valid UTF-8")) return "invalid_utf8";
  if (/^body: \d+ bytes exceeds/.test(reason)) return "too_large";
  if (reason.startsWith("verdict publish refused")) return "publish_refused";
  return "invalid_field";
}
