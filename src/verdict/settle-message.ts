/**
 * One message, from bytes to settlement: decode → match → publish the verdict
 * (awaiting its PubAck) → ack. An invalid message becomes a dead letter and is
 * terminated (never retried); a failed publish is nak'ed with a delay, and on
 * its last delivery becomes a dead letter too.
 */
import type { JsMsg } from "@nats-io/jetstream";
import type { Logger } from "pino";
import { decodeResult } from "../ingest/decode-result.js";
import { buildVerdict, matchResult } from "../match/match-result.js";
import type { RuleSnapshot } from "../match/snapshot.js";
import type { VerdictAction, VerdictSource } from "../match/types.js";
import type { Outcome } from "../ops/service-stats.js";
import type { Publisher } from "./publish.js";

export interface SettleOptions {
  readonly publisher: Publisher;
  /** The consumer's max_deliver: the delivery after which nothing comes back. */
  readonly maxDeliver: number;
  readonly nakDelayMs: number;
  readonly now: () => Date;
  readonly log: Logger;
  /** Told how long decoding and matching took, in seconds (for the match-latency histogram). */
  readonly onMatched?: (seconds: number) => void;
}

/** What to do with a message whose verdict could not be published. */
export function settlementAfterFailure(deliveryCount: number, maxDeliver: number): "nak" | "dead-letter" {
  return deliveryCount >= maxDeliver ? "dead-letter" : "nak";
}

export interface Settled {
  readonly outcome: Outcome;
  readonly action?: VerdictAction;
}

const errorText = (err: unknown) => (err instanceof Error ? err.message : String(err));

export async function settleMessage(msg: JsMsg, snapshot: RuleSnapshot, o: SettleOptions): Promise<Settled> {
  const source: VerdictSource = { stream: msg.info.stream, seq: msg.seq };

  const deadLetter = async (reason: string): Promise<Settled> => {
    try {
      await o.publisher.publishDeadLetter(msg.data, source, reason);
    } catch (err) {
      if (settlementAfterFailure(msg.info.deliveryCount, o.maxDeliver) === "dead-letter") {
        // Nothing will bring it back: say where it is so it can be replayed by hand.
        o.log.error({ ...source, reason, err: errorText(err) }, "dead letter could not be published on the last delivery; message left unsettled");
        msg.nak(o.nakDelayMs);
        return { outcome: "stuck" };
      }
      o.log.warn({ ...source, err: errorText(err) }, "dead letter publish failed; will retry");
      msg.nak(o.nakDelayMs);
      return { outcome: "retry" };
    }
    // Server 2.9 ignores a reason given to term(): the reason travels in the dead letter's headers.
    msg.term();
    return { outcome: "dead-letter" };
  };

  const startedAt = performance.now();
  const checked = decodeResult(msg.data);
  if (!checked.ok) return deadLetter(checked.reason);

  const decision = matchResult(snapshot, checked.value);
  o.onMatched?.((performance.now() - startedAt) / 1000);
  const verdict = buildVerdict(checked.value, decision, snapshot.version, source, o.now().toISOString());
  try {
    const { duplicate } = await o.publisher.publishVerdict(verdict, source);
    msg.ack();
    return { outcome: duplicate ? "duplicate-verdict" : "verdict", action: decision.action };
  } catch (err) {
    const delivery = msg.info.deliveryCount;
    if (settlementAfterFailure(delivery, o.maxDeliver) === "dead-letter") {
      return deadLetter(`verdict publish failed on delivery ${delivery} of ${o.maxDeliver}: ${errorText(err)}`);
    }
    o.log.warn({ ...source, delivery, err: errorText(err) }, "verdict publish failed; nak with delay");
    msg.nak(o.nakDelayMs);
    return { outcome: "retry" };
  }
}
