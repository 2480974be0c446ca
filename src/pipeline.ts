/**
 * The data flow of one instance: JetStream messages, pulled on credit →
 * held (bounded) until the rule snapshot exists → matched and settled, as many
 * at once as the live limit allows. JetStream stays the buffer.
 */
import type { Consumer, JsMsg } from "@nats-io/jetstream";
import type { Logger } from "pino";
import { mergeMap, tap, type Observable } from "rxjs";
import { awaitSnapshot } from "./gate/await-snapshot.js";
import type { ConcurrencyLimit } from "./gate/concurrency-limit.js";
import { pullMessages, type PullOptions } from "./ingest/pull-messages.js";
import type { RuleSnapshot } from "./match/snapshot.js";
import type { ServiceStats } from "./ops/service-stats.js";
import { settleMessage, type Settled, type SettleOptions } from "./verdict/settle-message.js";

/** mergeMap's own bound: the largest limit the KV key may set. The live limit is enforced at the pull. */
export const MAX_CONCURRENCY = 4096;

export interface PipelineOptions {
  readonly consumer: Consumer;
  readonly limit: ConcurrencyLimit;
  readonly snapshot$: Observable<RuleSnapshot | null>;
  readonly stats: ServiceStats;
  readonly pull: Omit<PullOptions, "drainSignal">;
  readonly settle: SettleOptions;
  /** Messages pulled before the first snapshot, at most. */
  readonly waitBuffer: number;
  readonly ackWaitMs: number;
  readonly log: Logger;
  /** Told of every settlement (metrics). */
  readonly onSettled?: (settled: Settled, msg: JsMsg) => void;
}

export interface RunningPipeline {
  /** Stop pulling; in-flight messages are settled; resolves when all are. */
  drain(): Promise<void>;
  /** Settles when the pipeline ends: resolves after a drain, rejects on a defect. */
  readonly done: Promise<void>;
}

export function runPipeline(o: PipelineOptions): RunningPipeline {
  const draining = new AbortController();
  const { limit, stats } = o;
  let subscription: { unsubscribe(): void } | undefined;
  const done = new Promise<void>((resolve, reject) => {
    subscription = pullMessages(o.consumer, limit, { ...o.pull, drainSignal: draining.signal }, o.log)
      .pipe(
        tap(() => stats.messageReceived()),
        awaitSnapshot<JsMsg, RuleSnapshot>(o.snapshot$, {
          maxWaiting: o.waitBuffer,
          // Well inside the ack wait: a waiting message is never redelivered.
          keepAlive: (msg) => msg.working(),
          keepAliveEveryMs: Math.max(250, Math.floor(o.ackWaitMs / 3)),
          release: (msg) => {
            msg.nak();
            stats.messageSettled("retry");
            limit.release(1);
          },
          onWaiting: (n) => stats.setWaiting(n),
        }),
        mergeMap(async ([msg, snapshot]) => {
          let result: Settled;
          try {
            result = await settleMessage(msg, snapshot, o.settle);
          } catch (err) {
            // settleMessage handles its failures; anything else is a defect: leave the message to redelivery.
            o.log.error({ err, stream: msg.info.stream, seq: msg.seq }, "unexpected failure settling a message");
            result = { outcome: "retry" as const };
          }
          stats.messageSettled(result.outcome, result.action);
          o.onSettled?.(result, msg);
          limit.release(1); // the message's credit: the pull may ask for one more
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
