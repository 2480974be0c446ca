/**
 * The JetStream streams and the durable consumer tortmatch needs, created
 * with the spec's names when absent. Existing streams are left as they are,
 * except for a verdict or dead-letter duplicate window too short to cover
 * redeliveries, which is widened (a too-short window could let a redelivered
 * input yield a second verdict).
 */
import { AckPolicy, DeliverPolicy, JetStreamApiCodes, JetStreamApiError, type JetStreamManager, type StreamConfig } from "@nats-io/jetstream";
import { nanos } from "@nats-io/nats-core";
import type { Logger } from "pino";

export interface TopologyOptions {
  readonly inputStream: string;
  readonly inputSubjects: readonly string[];
  readonly consumer: string;
  readonly verdictStream: string;
  readonly verdictSubjectPrefix: string;
  readonly deadLetterStream: string;
  readonly deadLetterSubject: string;
  readonly ackWaitMs: number;
  /** The last delivery tortmatch settles for good; the consumer's max_deliver is one more. */
  readonly maxDeliver: number;
  readonly duplicateWindowMs: number;
  /** The stream that keeps the consumer's max-deliveries advisories, and its durable consumer (named as the input's). */
  readonly exhaustedStream: string;
  /** Server-side bound on messages awaiting ack across every instance. */
  readonly maxAckPending: number;
  /** Replicas of each stream created (the consumer follows its stream). */
  readonly replicas: number;
}

/** The server's answer "no such stream" or "no such consumer", by its API error code. */
export const isNotFound = (err: unknown) =>
  err instanceof JetStreamApiError && (err.code === JetStreamApiCodes.StreamNotFound || err.code === JetStreamApiCodes.ConsumerNotFound);

/** The server's subject for the advisory it publishes when a message of `consumer` runs out of deliveries. */
export const maxDeliveriesAdvisory = (stream: string, consumer: string) => `$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.${stream}.${consumer}`;

/**
 * The exhausted-deliveries stream's retention: its advisories are small (~0.5 KB) and acked once
 * settled, but the stream keeps them (limits retention): at most 100,000, none older than 14 days.
 */
export const EXHAUSTED_RETENTION = { max_msgs: 100_000, max_age: nanos(14 * 24 * 3_600_000) } as const;
/** Deliveries of one advisory before the worker gives its input up (then logged at error level and counted). */
export const EXHAUSTED_MAX_DELIVER = 20;

async function ensureStream(
  jsm: JetStreamManager,
  config: Partial<StreamConfig> & { name: string },
  minDuplicateWindowMs: number | null,
  log: Logger,
  /** Limits a stream created without them gets added (never loosened). */
  limits?: { max_msgs: number; max_age: number },
): Promise<void> {
  try {
    const info = await jsm.streams.info(config.name);
    if (minDuplicateWindowMs !== null && info.config.duplicate_window < nanos(minDuplicateWindowMs)) {
      await jsm.streams.update(config.name, { ...info.config, duplicate_window: nanos(minDuplicateWindowMs) });
      log.warn({ stream: config.name, duplicateWindowMs: minDuplicateWindowMs }, "widened the stream's duplicate window to cover redeliveries");
    }
    if (limits !== undefined && (info.config.max_msgs <= 0 || info.config.max_age === 0)) {
      const bounded = {
        max_msgs: info.config.max_msgs > 0 ? info.config.max_msgs : limits.max_msgs,
        max_age: info.config.max_age > 0 ? info.config.max_age : limits.max_age,
      };
      await jsm.streams.update(config.name, { ...info.config, ...bounded });
      log.warn({ stream: config.name, maxMessages: bounded.max_msgs, maxAgeHours: bounded.max_age / 3.6e12 }, "bounded the stream's retention");
    }
  } catch (err) {
    if (!isNotFound(err)) throw err;
    await jsm.streams.add(config);
    log.info({ stream: config.name, subjects: config.subjects }, "created stream");
  }
}

/** Make sure the three streams and the durable consumer exist; returns nothing, throws on failure. */
export async function ensureTopology(jsm: JetStreamManager, o: TopologyOptions, log: Logger): Promise<void> {
  const replicas = o.replicas;
  await ensureStream(jsm, { name: o.inputStream, subjects: [...o.inputSubjects], num_replicas: replicas }, null, log);
  await ensureStream(
    jsm,
    { name: o.verdictStream, subjects: [`${o.verdictSubjectPrefix}.>`], duplicate_window: nanos(o.duplicateWindowMs), num_replicas: replicas },
    o.duplicateWindowMs,
    log,
  );
  await ensureStream(
    jsm,
    { name: o.deadLetterStream, subjects: [o.deadLetterSubject], duplicate_window: nanos(o.duplicateWindowMs), num_replicas: replicas },
    o.duplicateWindowMs,
    log,
  );
  await ensureStream(
    jsm,
    { name: o.exhaustedStream, subjects: [maxDeliveriesAdvisory(o.inputStream, o.consumer)], num_replicas: replicas, ...EXHAUSTED_RETENTION },
    null,
    log,
    EXHAUSTED_RETENTION,
  );
  await ensureConsumer(jsm, o.inputStream, o.consumer, { ack_wait: nanos(o.ackWaitMs), max_deliver: o.maxDeliver + 1, max_ack_pending: o.maxAckPending }, log);
  // The exhausted-deliveries worker: few messages, each settled with a get and a publish.
  await ensureConsumer(jsm, o.exhaustedStream, o.consumer, { ack_wait: nanos(o.ackWaitMs), max_deliver: EXHAUSTED_MAX_DELIVER, max_ack_pending: 1_000 }, log);
}

async function ensureConsumer(
  jsm: JetStreamManager,
  stream: string,
  name: string,
  wanted: { ack_wait: number; max_deliver: number; max_ack_pending: number },
  log: Logger,
): Promise<void> {
  const o = { inputStream: stream, consumer: name };
  try {
    const info = await jsm.consumers.info(o.inputStream, o.consumer);
    const c = info.config;
    if (c.ack_wait !== wanted.ack_wait || c.max_deliver !== wanted.max_deliver || c.max_ack_pending !== wanted.max_ack_pending) {
      await jsm.consumers.update(o.inputStream, o.consumer, wanted);
      log.info({ stream, consumer: name, ...wanted }, "updated consumer settings");
    }
  } catch (err) {
    if (!isNotFound(err)) throw err;
    await jsm.consumers.add(o.inputStream, {
      durable_name: o.consumer,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ...wanted,
    });
    log.info({ stream: o.inputStream, consumer: o.consumer }, "created durable consumer");
  }
}
