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
import type { ByteBudget } from "../gate/byte-budget.js";
import type { ConcurrencyLimit } from "../gate/concurrency-limit.js";
import { MAX_RESULT_BYTES } from "./decode-result.js";

/**
 * Bytes reserved for each message a pull request asks for: the largest
 * accepted result with its subject and headers. nats.js cannot bound a fetch
 * by messages and bytes at once, so a request reserves the worst case per
 * message, and each message that arrives gives back what it did not use.
 */
export const MESSAGE_RESERVE_BYTES = MAX_RESULT_BYTES + 64 * 1024;

/** A pulled message and the bytes of the budget it holds until settled. */
export interface PulledMessage {
  readonly msg: JsMsg;
  readonly bytes: number;
}

/**
 * A message's bytes as held in the process, about: body, subject, reply subject and
 * up to 512 bytes of headers (counted, not decoded: decoding them per message costs more).
 */
const sizeOf = (msg: JsMsg) => msg.data.length + msg.subject.length + 640;

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
 * `limit` and `bytes` of `budget`: whoever settles it must release both.
 * Unsubscribing stops at once; `drainSignal` stops gracefully. Messages
 * already delivered keep their credits until settled.
 */
export function pullMessages(consumer: Consumer, limit: ConcurrencyLimit, budget: ByteBudget, options: PullOptions, log: Logger): Observable<PulledMessage> {
  return new Observable<PulledMessage>((subscriber) => {
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
            // The message keeps what it holds of its reserve, and gives back the rest.
            const charge = Math.min(sizeOf(msg), MESSAGE_RESERVE_BYTES);
            budget.release(MESSAGE_RESERVE_BYTES - charge);
            subscriber.next({ msg, bytes: charge });
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
        budget.release((credits - received) * MESSAGE_RESERVE_BYTES);
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
        let bytes: number;
        try {
          bytes = await budget.acquire(MESSAGE_RESERVE_BYTES, credits * MESSAGE_RESERVE_BYTES, noMorePulls);
        } catch {
          limit.release(credits);
          break; // stopping
        }
        // As many messages as the bytes reserve allows; the rest goes back.
        const asked = Math.min(credits, Math.floor(bytes / MESSAGE_RESERVE_BYTES));
        limit.release(credits - asked);
        budget.release(bytes - asked * MESSAGE_RESERVE_BYTES);
        void drainOne(asked);
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
