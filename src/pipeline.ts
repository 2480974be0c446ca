/**
 * The data flow of one instance, stage by stage, each from its own folder:
 * pull (ingest/, on credit: JetStream stays the buffer) → decode (ingest/,
 * pure) → wait for the rule snapshot (gate/, bounded) → match (match/, pure)
 * → publish and settle (verdict/: a pure decision and its executor), as many
 * at once as the live limit allows.
 */
import type { JsMsg } from "@nats-io/jetstream";
import type { Logger } from "pino";
import { map, mergeMap, type Observable } from "rxjs";
import { awaitSnapshot } from "./gate/await-snapshot.js";
import type { ByteBudget } from "./gate/byte-budget.js";
import type { ConcurrencyLimit } from "./gate/concurrency-limit.js";
import { decodeResult } from "./ingest/decode-result.js";
import { pullMessages, type PullOptions, type PullSource } from "./ingest/pull-messages.js";
import type { RuleSnapshot } from "./match/snapshot.js";
import type { Checked, RecognitionResult, VerdictAction } from "./match/types.js";
import type { DeadLetterClass, SettlementOutcome } from "./verdict/decide-settlement.js";
import { decideAndSettle } from "./verdict/decide-and-settle.js";
import { deliveredMessage, type Settled, type SettleOptions } from "./verdict/settle-message.js";

const RETRY: Settled = { outcome: "retry" };

/** mergeMap's own bound: the largest limit the KV key may set. The live limit is enforced at the pull. */
export const MAX_CONCURRENCY = 4096;

/** What the pipeline reports as it works: the instance's one count of its messages (ops/service-stats.ts). */
export interface PipelineCounts {
  /** A message pulled, holding `bytes` of the byte budget until it is done with. */
  messageReceived(bytes: number): void;
  setWaiting(waiting: number): void;
  messageSettled(outcome: SettlementOutcome, action: VerdictAction | undefined, deadLetter: DeadLetterClass | undefined, bytes: number): void;
}

export interface PipelineOptions {
  /** The durable consumer pulled from. */
  readonly source: PullSource;
  readonly limit: ConcurrencyLimit;
  /** Bytes of messages between pull and settlement. */
  readonly budget: ByteBudget;
  readonly snapshot$: Observable<RuleSnapshot | null>;
  /** Each emission hands back the messages waiting for the first snapshot (its first load failed). */
  readonly giveBack$?: Observable<unknown>;
  readonly stats: PipelineCounts;
  readonly pull: Omit<PullOptions, "drainSignal">;
  readonly settle: SettleOptions;
  /** Messages pulled before the first snapshot, at most. */
  readonly waitBuffer: number;
  readonly ackWaitMs: number;
  readonly now: () => Date;
  readonly log: Logger;
  /** Told how long matching one result took, in seconds. */
  readonly onMatched?: (seconds: number) => void;
  /**
   * Told of every settlement (metrics, the adaptive limit), with when its message could first be
   * matched (its arrival, or the first snapshot's for one that waited) and when it was settled,
   * both `performance.now()` ms: the time from pull to PubAck.
   */
  readonly onSettled?: (settled: Settled, msg: JsMsg, startedMs: number, settledMs: number) => void;
}

export interface RunningPipeline {
  /** Stop pulling; in-flight messages are settled; resolves when all are. */
  drain(): Promise<void>;
  /** Settles when the pipeline ends: resolves after a drain, rejects on a defect. */
  readonly done: Promise<void>;
}

interface Decoded {
  readonly msg: JsMsg;
  readonly bytes: number;
  readonly checked: Checked<RecognitionResult>;
}

/**
 * `now()` as ISO-8601 text, made once per millisecond and reused within it: a verdict's decidedAt
 * has millisecond precision, and Date#toISOString costs ~1.1 µs a call on Node 20, more than
 * matching a result does.
 */
export function isoClock(now: () => Date): () => string {
  let lastMs = Number.NaN;
  let lastText = "";
  return () => {
    const date = now();
    const ms = date.getTime();
    if (ms !== lastMs) {
      lastMs = ms;
      lastText = date.toISOString();
    }
    return lastText;
  };
}

export function runPipeline(o: PipelineOptions): RunningPipeline {
  const draining = new AbortController();
  const decidedAt = isoClock(o.now);
  const { limit, budget, stats } = o;
  /** A message is done with (settled, or handed back): count it, and give back its credit and bytes so the pull may ask for more. */
  const finish = (settled: Settled, bytes: number) => {
    stats.messageSettled(settled.outcome, settled.action, settled.deadLetter, bytes);
    limit.release(1);
    budget.release(bytes);
  };
  let subscription: { unsubscribe(): void } | undefined;
  const done = new Promise<void>((resolve, reject) => {
    subscription = pullMessages(o.source, limit, budget, { ...o.pull, drainSignal: draining.signal }, o.log)
      .pipe(
        map(({ msg, bytes }): Decoded => {
          stats.messageReceived(bytes);
          return { msg, bytes, checked: decodeResult(msg.data) };
        }),
        awaitSnapshot<Decoded, RuleSnapshot>(o.snapshot$, {
          maxWaiting: o.waitBuffer,
          // Well inside the ack wait: a waiting message is never redelivered.
          keepAlive: ({ msg }) => msg.working(),
          keepAliveEveryMs: Math.max(250, Math.floor(o.ackWaitMs / 3)),
          release: ({ msg, bytes }) => {
            msg.nak();
            finish(RETRY, bytes);
          },
          onWaiting: (n) => stats.setWaiting(n),
          ...(o.giveBack$ ? { giveBack$: o.giveBack$ } : {}),
        }),
        mergeMap(async ([{ msg, bytes, checked }, snapshot]) => {
          const startedMs = performance.now();
          let settled: Settled;
          try {
            settled = await decideAndSettle(deliveredMessage(msg), checked, snapshot, decidedAt(), o.settle, o.onMatched);
          } catch (err) {
            // settleMessage turns every failure into a settlement; anything else is a defect: leave the message to redelivery.
            o.log.error({ err, stream: msg.info.stream, seq: msg.seq }, "unexpected failure settling a message");
            settled = RETRY;
          }
          o.onSettled?.(settled, msg, startedMs, performance.now());
          finish(settled, bytes);
        }, MAX_CONCURRENCY),
      )
      .subscribe({ complete: resolve, error: reject });
  });
  return {
    async drain() {
      draining.abort(new Error("draining"));
      await done.catch(() => {});
    },
    done: done.finally(() => subscription?.unsubscribe()),
  };
}
