/**
 * The JetStream streams and the durable consumer tortmatch needs, created
 * with the spec's names when absent. Existing streams are left as they are,
 * except for a verdict or dead-letter duplicate window too short to cover
 * redeliveries, which is widened (a too-short window could let a redelivered
 * input yield a second verdict).
 */
import { AckPolicy, DeliverPolicy, type JetStreamManager, type StreamConfig } from "@nats-io/jetstream";
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
  readonly maxDeliver: number;
  readonly duplicateWindowMs: number;
  /** Server-side bound on messages awaiting ack across every instance. */
  readonly maxAckPending: number;
  /** Replicas of each stream created (the consumer follows its stream). */
  readonly replicas: number;
}

const isNotFound = (err: unknown) => /not found/i.test(String((err as Error)?.message));

async function ensureStream(jsm: JetStreamManager, config: Partial<StreamConfig> & { name: string }, minDuplicateWindowMs: number | null, log: Logger): Promise<void> {
  try {
    const info = await jsm.streams.info(config.name);
    if (minDuplicateWindowMs !== null && info.config.duplicate_window < nanos(minDuplicateWindowMs)) {
      await jsm.streams.update(config.name, { ...info.config, duplicate_window: nanos(minDuplicateWindowMs) });
      log.warn({ stream: config.name, duplicateWindowMs: minDuplicateWindowMs }, "widened the stream's duplicate window to cover redeliveries");
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
  const wanted = { ack_wait: nanos(o.ackWaitMs), max_deliver: o.maxDeliver, max_ack_pending: o.maxAckPending };
  try {
    const info = await jsm.consumers.info(o.inputStream, o.consumer);
    const c = info.config;
    if (c.ack_wait !== wanted.ack_wait || c.max_deliver !== wanted.max_deliver || c.max_ack_pending !== wanted.max_ack_pending) {
      await jsm.consumers.update(o.inputStream, o.consumer, wanted);
      log.info({ consumer: o.consumer, ackWaitMs: o.ackWaitMs, maxDeliver: o.maxDeliver, maxAckPending: o.maxAckPending }, "updated consumer settings");
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
