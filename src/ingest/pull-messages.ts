/**
 * JetStream → Observable, pulled on credit. The loop takes credits from the
 * concurrency limit before each pull request and asks for exactly that many
 * messages, so the Observable never emits more than the limit allows and no
 * operator downstream has to buffer: what is not pulled stays in JetStream.
 * Several pull requests may be outstanding at once (each holds its own
 * credits); a request that ends short gives its unused credits back.
 */
import type { Consumer, JsMsg } from "@nats-io/jetstream";
import { Observable } from "rxjs";
import type { Logger } from "pino";
import type { ConcurrencyLimit } from "../gate/concurrency-limit.js";

export interface PullOptions {
  /** Most messages one pull request asks for. */
  readonly maxBatch: number;
  /** How long one pull request waits on the server for messages (>= 1000 ms). */
  readonly expiresMs: number;
  /** Pause after a failed pull request (no responders, reconnecting, consumer missing). */
  readonly retryDelayMs: number;
  /**
   * Graceful stop: no new pull request; open ones run to their end (full or
   * expired), then the Observable completes. Cancelling an open request would
   * strand what the server is already sending (redelivered only after ack wait).
   */
  readonly drainSignal?: AbortSignal;
}

const pause = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });

/**
 * Messages of a durable consumer. Each emitted message holds one credit of
 * `limit`: whoever settles it must `limit.release(1)`. Unsubscribing stops at
 * once; `drainSignal` stops gracefully. Messages already delivered keep their
 * credits until settled.
 */
export function pullMessages(consumer: Consumer, limit: ConcurrencyLimit, options: PullOptions, log: Logger): Observable<JsMsg> {
  return new Observable<JsMsg>((subscriber) => {
    const stop = new AbortController();
    const open = new Set<{ stop(): void }>();
    // Either signal ends the loop; only unsubscribing (stop) cancels open requests.
    const noMorePulls = options.drainSignal ? AbortSignal.any([stop.signal, options.drainSignal]) : stop.signal;
    let running = 0;
    let loopEnded = false;
    const maybeComplete = () => {
      if (loopEnded && running === 0) subscriber.complete();
    };

    const drainOne = async (credits: number) => {
      let received = 0;
      running++;
      try {
        const batch = await consumer.fetch({ max_messages: credits, expires: options.expiresMs });
        if (stop.signal.aborted) {
          batch.stop();
          return;
        }
        open.add(batch);
        try {
          for await (const msg of batch) {
            received++;
            subscriber.next(msg);
          }
        } finally {
          open.delete(batch);
        }
      } catch (err) {
        if (!stop.signal.aborted) {
          log.warn({ err: (err as Error).message }, "pull request failed; retrying");
          await pause(options.retryDelayMs, stop.signal);
        }
      } finally {
        limit.release(credits - received);
        running--;
        maybeComplete();
      }
    };

    (async () => {
      while (!noMorePulls.aborted) {
        let credits: number;
        try {
          credits = await limit.acquire(options.maxBatch, noMorePulls);
        } catch {
          break; // stopping
        }
        void drainOne(credits);
      }
      loopEnded = true;
      maybeComplete();
    })();

    return () => {
      stop.abort(new Error("pull stopped"));
      for (const batch of open) batch.stop();
    };
  });
}
