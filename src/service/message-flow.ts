/**
 * The messages' part of the service: the verdict publisher (one PubAck inbox), the settlement
 * options both settling paths share, the consumer (the pipeline, as an actor: drained on DRAIN,
 * retuned on CONFIG.CONCURRENCY through the concurrency control, which each settlement's round trip
 * also feeds) and the exhausted-deliveries worker. The publisher is closed by
 * `close()` once both actors have stopped.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import type { BehaviorSubject, Subject } from "rxjs";
import { fromCallback, type AnyEventObject } from "xstate";
import type { ServiceEvent } from "../../machines/service.machine.js";
import type { Config } from "../config.js";
import type { ByteBudget } from "../gate/byte-budget.js";
import type { ConcurrencyControl } from "../gate/concurrency-control.js";
import type { ConcurrencyLimit } from "../gate/concurrency-limit.js";
import { EXHAUSTED_MAX_DELIVER } from "../ingest/topology.js";
import type { RuleSnapshot } from "../match/snapshot.js";
import type { LatencyWindow } from "../ops/history.js";
import type { Metrics } from "../ops/metrics.js";
import type { ServiceStats } from "../ops/service-stats.js";
import { runPipeline } from "../pipeline.js";
import { createPublisher } from "../verdict/publish.js";
import { startExhaustedWorker } from "../verdict/settle-exhausted.js";
import { createVerdictLookup } from "../verdict/verdict-lookup.js";
import type { Topology } from "./open-topology.js";

/** Verdict publishes on the final delivery, at most (each bounded by TORT_PUBLISH_TIMEOUT_MS). */
export const FINAL_PUBLISH_ATTEMPTS = 3;
/** Most verdict headers one lookup for late redeliveries reads (about a minute's work at worst). */
export const VERDICT_LOOKUP_MAX_SCAN = 2_000_000;

export type MessageFlowSettings = Pick<
  Config,
  | "TORT_INPUT_STREAM" | "TORT_CONSUMER" | "TORT_VERDICT_STREAM" | "TORT_VERDICT_SUBJECT_PREFIX" | "TORT_DEADLETTER_SUBJECT"
  | "TORT_PUBLISH_TIMEOUT_MS" | "TORT_MAX_DELIVER" | "TORT_NAK_DELAY_MS" | "TORT_DUPLICATE_WINDOW_MS" | "TORT_PULL_BATCH"
  | "TORT_WAIT_BUFFER" | "TORT_ACK_WAIT_MS"
>;

export interface MessageFlowOptions {
  readonly nc: NatsConnection;
  readonly topology: Topology;
  readonly settings: MessageFlowSettings;
  readonly stats: ServiceStats;
  readonly limit: ConcurrencyLimit;
  /** Sets `limit`: the configured number, or the adaptive limiter. */
  readonly control: ConcurrencyControl;
  readonly budget: ByteBudget;
  readonly latencies: LatencyWindow;
  readonly snapshot$: BehaviorSubject<RuleSnapshot | null>;
  readonly giveBack$: Subject<void>;
  readonly metrics: Pick<Metrics, "matched" | "settledAfter">;
  readonly log: Logger;
  readonly now: () => Date;
  /** How long one pull request waits on the server. */
  readonly pullExpiresMs: number;
}

export function createMessageFlow(o: MessageFlowOptions) {
  const { nc, settings: c, log, now } = o;
  const publisher = createPublisher(nc, {
    subjects: { verdictSubjectPrefix: c.TORT_VERDICT_SUBJECT_PREFIX, deadLetterSubject: c.TORT_DEADLETTER_SUBJECT },
    timeoutMs: c.TORT_PUBLISH_TIMEOUT_MS,
    maxPayload: () => nc.info?.max_payload ?? 1024 * 1024,
    log,
  });
  const settle = {
    publisher,
    finalDelivery: c.TORT_MAX_DELIVER,
    maxPublishAttempts: FINAL_PUBLISH_ATTEMPTS,
    nakDelayMs: c.TORT_NAK_DELAY_MS,
    log,
    // Redeliveries later than the duplicate window ask the verdict stream before publishing.
    lookup: createVerdictLookup(o.topology.js, { verdictStream: c.TORT_VERDICT_STREAM, maxScan: VERDICT_LOOKUP_MAX_SCAN, log }),
    duplicateWindowMs: c.TORT_DUPLICATE_WINDOW_MS,
    now: () => now().getTime(),
  };
  const consumer = fromCallback<AnyEventObject>(({ sendBack, receive }) => {
    const pipeline = runPipeline({
      source: { nc, stream: c.TORT_INPUT_STREAM, consumer: c.TORT_CONSUMER },
      limit: o.limit,
      budget: o.budget,
      snapshot$: o.snapshot$,
      giveBack$: o.giveBack$,
      stats: o.stats,
      pull: { maxBatch: c.TORT_PULL_BATCH, expiresMs: o.pullExpiresMs, retryDelayMs: 1_000 },
      settle,
      waitBuffer: c.TORT_WAIT_BUFFER,
      ackWaitMs: c.TORT_ACK_WAIT_MS,
      now,
      onMatched: o.metrics.matched,
      log,
      onSettled: (settled, msg, startedMs, settledMs) => {
        // Left unsettled (publish failed or timed out): the adaptive limit's sign of queueing; else a round trip.
        if (settled.outcome === "retry" || settled.outcome === "stuck") o.control.dropped();
        else o.control.observe(startedMs, settledMs);
        const endToEnd = Math.max(0, now().getTime() - msg.info.timestampNanos / 1e6) / 1000;
        o.metrics.settledAfter(endToEnd);
        o.latencies.observe(endToEnd);
      },
    });
    pipeline.done.catch((err: unknown) => sendBack({ type: "CONSUMER.FAILED", error: String((err as Error)?.message ?? err) }));
    receive((event) => {
      if (event.type === "DRAIN") void pipeline.drain().then(() => sendBack({ type: "CONSUMER.DRAINED" }));
      if (event.type === "CONFIG.CONCURRENCY") o.control.apply(event as ServiceEvent & { type: "CONFIG.CONCURRENCY" });
    });
  });
  const exhaustedWorker = fromCallback(() => {
    const worker = startExhaustedWorker({
      consumer: o.topology.exhaustedConsumer,
      jsm: o.topology.jsm,
      inputStream: c.TORT_INPUT_STREAM,
      snapshot: () => o.snapshot$.value,
      settle,
      retryDelayMs: Math.max(c.TORT_NAK_DELAY_MS, 1_000),
      now,
      log,
      onSettled: (settled) => o.stats.exhaustedSettled(settled.outcome, settled.deadLetter),
      maxDeliver: EXHAUSTED_MAX_DELIVER,
      onGaveUp: () => o.stats.exhaustedGaveUp(),
    });
    return () => void worker.stop();
  });
  return { consumer, exhaustedWorker, close: () => publisher.close() };
}
