/**
 * The thin executor of decideSettlement: it performs each step against
 * JetStream (publish the verdict, publish the dead letter, ack, nak, term)
 * and asks the decision again, until the message is settled. It neither
 * decodes nor matches: it is handed the decode outcome and the verdict.
 */
import type { JsMsg } from "@nats-io/jetstream";
import type { Logger } from "pino";
import type { Verdict, VerdictAction, VerdictSource } from "../match/types.js";
import { deadLetterClass, decideSettlement, type DeadLetterClass, type PublishOutcome, type SettlementFacts, type SettlementOutcome } from "./decide-settlement.js";
import type { Publisher } from "./publish.js";
import type { VerdictLookup } from "./verdict-lookup.js";

export interface SettleOptions {
  readonly publisher: Publisher;
  /** The last delivery the service settles for good (TORT_MAX_DELIVER); the consumer allows one more. */
  readonly finalDelivery: number;
  /** Verdict publishes on the final delivery, at most. */
  readonly maxPublishAttempts: number;
  readonly nakDelayMs: number;
  readonly log: Logger;
  /** Asked for late redeliveries (see decide-settlement.ts); without it, none is treated as late. */
  readonly lookup?: VerdictLookup;
  /** The verdict stream's duplicate window, ms. */
  readonly duplicateWindowMs?: number;
  readonly now?: () => number;
}

/**
 * Later than this share of the duplicate window after the input was stored,
 * a redelivery is treated as late: the margin covers clock skew between the
 * server (storage time) and this process.
 */
export const LATE_SHARE_OF_WINDOW = 0.8;

/** What the pipeline hands over: the message and either its verdict or why it is invalid. */
export type Decided = { readonly ok: true; readonly verdict: Verdict } | { readonly ok: false; readonly reason: string };

export interface Settled {
  readonly outcome: SettlementOutcome;
  readonly action?: VerdictAction;
  /** For a dead letter: the class of its reason. */
  readonly deadLetter?: DeadLetterClass;
}

/**
 * What the executor settles: a delivered JetStream message, or (for the
 * exhausted-deliveries worker) an input read back from its stream, settled
 * by acknowledging the advisory that named it.
 */
export interface Settleable {
  readonly data: Uint8Array;
  readonly source: VerdictSource;
  readonly delivery: number;
  /** When the input was stored in its stream (epoch ms, the server's clock). */
  readonly storedAtMs: number;
  ack(): void;
  nak(delayMs: number): void;
  term(): void;
  /** Extends the ack wait while a publish is retried. */
  working(): void;
}

/** A delivered input message as a Settleable (methods on the prototype: no closures per message). */
class DeliveredMessage implements Settleable {
  readonly data: Uint8Array;
  readonly source: VerdictSource;
  readonly delivery: number;
  readonly storedAtMs: number;
  constructor(private readonly msg: JsMsg) {
    const info = msg.info; // parsed once
    this.data = msg.data;
    this.source = { stream: info.stream, seq: msg.seq };
    this.delivery = info.deliveryCount;
    this.storedAtMs = info.timestampNanos / 1e6;
  }
  ack(): void {
    this.msg.ack();
  }
  nak(delayMs: number): void {
    this.msg.nak(delayMs);
  }
  term(): void {
    this.msg.term();
  }
  working(): void {
    this.msg.working();
  }
}

/** A delivered input message as a Settleable. */
export const deliveredMessage = (msg: JsMsg): Settleable => new DeliveredMessage(msg);

type Mutable<T> = { -readonly [K in keyof T]: T[K] };
const DECODED = Object.freeze({ ok: true as const });

export async function settleMessage(msg: Settleable, decided: Decided, o: SettleOptions): Promise<Settled> {
  const source = msg.source;
  const verdictAttempts: PublishOutcome[] = [];
  let deadLetterReason = "";
  const late =
    o.lookup !== undefined &&
    o.duplicateWindowMs !== undefined &&
    msg.delivery > 1 &&
    (o.now ?? Date.now)() - msg.storedAtMs > o.duplicateWindowMs * LATE_SHARE_OF_WINDOW;
  // One facts object, updated as steps end (decideSettlement keeps nothing of it between calls).
  const facts: Mutable<SettlementFacts> = {
    decoded: decided.ok ? DECODED : decided,
    delivery: msg.delivery,
    finalDelivery: o.finalDelivery,
    maxPublishAttempts: o.maxPublishAttempts,
    verdictAttempts,
    deadLetter: undefined,
    late,
    lookup: undefined,
  };
  for (;;) {
    const step = decideSettlement(facts);
    switch (step.do) {
      case "lookup-verdict":
        facts.lookup = await o.lookup!.find(source, msg.storedAtMs);
        continue;
      case "publish-verdict":
        if (verdictAttempts.length > 0) msg.working(); // a retry on the final delivery: keep the ack wait ahead of it
        verdictAttempts.push(await o.publisher.publishVerdict((decided as Extract<Decided, { ok: true }>).verdict, source));
        continue;
      case "publish-dead-letter":
        deadLetterReason = step.reason;
        facts.deadLetter = await o.publisher.publishDeadLetter(msg.data, source, step.reason);
        continue;
      case "ack":
        // Outside any publish: an ack that throws (connection closing) is not a failed publish.
        // The input comes back after ack wait, and its verdict is then a known duplicate.
        try {
          msg.ack();
        } catch (err) {
          o.log.warn({ ...source, err: (err as Error).message }, "ack failed after the verdict was stored; the redelivery will find it a duplicate");
        }
        return { outcome: step.outcome, action: (decided as Extract<Decided, { ok: true }>).verdict.action };
      case "term":
        // Server 2.9 ignores a reason given to term(): the reason travels in the dead letter's headers.
        try {
          msg.term();
        } catch (err) {
          o.log.warn({ ...source, err: (err as Error).message }, "term failed after the dead letter was stored");
        }
        return { outcome: step.outcome, deadLetter: deadLetterClass(deadLetterReason) };
      case "nak":
        if (step.outcome === "stuck") {
          o.log.error({ ...source, delivery: msg.delivery, why: step.why }, "message not settled on its final delivery; the exhausted-deliveries worker takes it over");
        } else {
          o.log.warn({ ...source, delivery: msg.delivery, why: step.why }, "message not settled; nak with delay");
        }
        try {
          msg.nak(o.nakDelayMs);
        } catch {
          // The connection is gone: ack wait brings it back.
        }
        return { outcome: step.outcome };
    }
  }
}
