/**
 * The service's listeners, each an actor that holds one subscription for as long as it runs: the
 * live configuration (KV), the rule-change notices (a subject), and the consumer's lag (polled).
 */
import type { JetStreamManager } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { fromCallback } from "xstate";
import { pollConsumerLag } from "../ingest/consumer-lag.js";
import type { LiveConfigValues } from "../live-config/parse-live-config.js";
import { watchLiveConfig } from "../live-config/watch-live-config.js";
import type { ServiceState } from "./service-state.js";

/** A rule-change notice asks for a full reload when its body is `{"full":true}` (`tortmatch rules refresh --full`). */
export function noticeAsksFull(data: Uint8Array): boolean {
  if (data.length === 0 || data.length > 1024) return false;
  try {
    return (JSON.parse(new TextDecoder().decode(data)) as { full?: unknown })?.full === true;
  } catch {
    return false;
  }
}

/** The live keys, each change sent on as the event the service machine routes. */
export const configWatcher = (kv: KV, defaults: LiveConfigValues, log: Logger) =>
  fromCallback(({ sendBack }) => {
    const watcher = watchLiveConfig(
      kv,
      defaults,
      (change) => sendBack(change.key === "refresh_interval_ms" ? { type: "CONFIG.REFRESH_INTERVAL", ms: change.value } : { type: "CONFIG.CONCURRENCY", ...change }),
      log,
    );
    return () => watcher.stop();
  });

/** Rule-change notices: each asks for a refresh (`onNotice` first: the caller's own bookkeeping). */
export const changeNotices = (nc: NatsConnection, subject: string, onNotice: () => void) =>
  fromCallback(({ sendBack }) => {
    const sub = nc.subscribe(subject, {
      callback: (_err, msg) => {
        onNotice();
        sendBack({ type: "RULES.CHANGED", full: noticeAsksFull(msg.data) });
      },
    });
    return () => sub.unsubscribe();
  });

/** The durable consumer's lag, read every `everyMs` into the service's read model. */
export const lagPoller = (jsm: JetStreamManager, o: { stream: string; consumer: string; everyMs: number }, state: ServiceState, log: Logger, now: () => number) =>
  fromCallback(() => {
    const poller = pollConsumerLag(jsm, o.stream, o.consumer, o.everyMs, log, now);
    state.lag = poller.latest;
    return () => poller.stop();
  });
