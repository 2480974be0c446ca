/**
 * "Is it keeping up?": the durable consumer's lag, read from the server at a
 * bounded rate (one consumer-info request every `everyMs` per instance,
 * whatever the scrape rate), kept for /metrics and the status page.
 */
import type { JetStreamManager } from "@nats-io/jetstream";
import type { Logger } from "pino";

export interface ConsumerLag {
  /** Messages in the stream not yet delivered to the consumer. */
  readonly pending: number;
  /** Delivered, not yet acknowledged (across every instance). */
  readonly ackPending: number;
  /** Delivered more than once and not yet acknowledged. */
  readonly redelivered: number;
  /** When it was read (epoch ms). */
  readonly at: number;
}

export interface LagPoller {
  /** The last reading, or null before the first. */
  latest(): ConsumerLag | null;
  stop(): void;
}

export function pollConsumerLag(jsm: JetStreamManager, stream: string, consumer: string, everyMs: number, log: Logger, now: () => number = Date.now): LagPoller {
  let latest: ConsumerLag | null = null;
  let failing = false;
  let running = false;
  const read = async () => {
    if (running) return; // one request at a time, even when the server is slow
    running = true;
    try {
      const info = await jsm.consumers.info(stream, consumer);
      latest = { pending: info.num_pending, ackPending: info.num_ack_pending, redelivered: info.num_redelivered, at: now() };
      if (failing) log.info("consumer lag readable again");
      failing = false;
    } catch (err) {
      if (!failing) log.warn({ err: (err as Error).message }, "reading the consumer's lag failed; the lag metrics keep their last reading");
      failing = true;
    } finally {
      running = false;
    }
  };
  void read();
  const timer = setInterval(() => void read(), everyMs);
  timer.unref();
  return { latest: () => latest, stop: () => clearInterval(timer) };
}
