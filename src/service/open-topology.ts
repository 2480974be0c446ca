/**
 * What the service needs on the server before anything runs: its streams and durable consumers
 * (created when missing), the exhausted-deliveries consumer, the live-config bucket and, in a fleet,
 * the rules bucket and the snapshot store. Handles only: nothing here needs closing.
 */
import { jetstream, jetstreamManager, type Consumer, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import type { Config } from "../config.js";
import { openRulesBucket } from "../fleet/rules-bucket.js";
import { openSnapshotStore, type SnapshotStore } from "../fleet/snapshot-store.js";
import { ensureTopology } from "../ingest/topology.js";
import { openConfigBucket } from "../live-config/config-bucket.js";

export type TopologySettings = Pick<
  Config,
  | "TORT_INPUT_STREAM" | "TORT_INPUT_SUBJECTS" | "TORT_CONSUMER" | "TORT_VERDICT_STREAM" | "TORT_VERDICT_SUBJECT_PREFIX"
  | "TORT_DEADLETTER_STREAM" | "TORT_DEADLETTER_SUBJECT" | "TORT_ACK_WAIT_MS" | "TORT_MAX_DELIVER" | "TORT_DUPLICATE_WINDOW_MS"
  | "TORT_EXHAUSTED_STREAM" | "TORT_MAX_ACK_PENDING" | "TORT_STREAM_REPLICAS" | "TORT_CONFIG_BUCKET" | "TORT_FLEET"
  | "TORT_RULES_BUCKET" | "TORT_SNAPSHOT_BUCKET" | "TORT_SNAPSHOT_MAX_MB"
>;

export interface Topology {
  readonly jsm: JetStreamManager;
  readonly js: JetStreamClient;
  readonly exhaustedConsumer: Consumer;
  readonly configKv: KV;
  /** The fleet's buckets; null with TORT_FLEET=off. */
  readonly fleet: { readonly rulesKv: KV; readonly store: SnapshotStore } | null;
}

export async function openTopology(nc: NatsConnection, c: TopologySettings, log: Logger): Promise<Topology> {
  const jsm = await jetstreamManager(nc);
  await ensureTopology(
    jsm,
    {
      inputStream: c.TORT_INPUT_STREAM,
      inputSubjects: c.TORT_INPUT_SUBJECTS.split(","),
      consumer: c.TORT_CONSUMER,
      verdictStream: c.TORT_VERDICT_STREAM,
      verdictSubjectPrefix: c.TORT_VERDICT_SUBJECT_PREFIX,
      deadLetterStream: c.TORT_DEADLETTER_STREAM,
      deadLetterSubject: c.TORT_DEADLETTER_SUBJECT,
      ackWaitMs: c.TORT_ACK_WAIT_MS,
      maxDeliver: c.TORT_MAX_DELIVER,
      duplicateWindowMs: c.TORT_DUPLICATE_WINDOW_MS,
      exhaustedStream: c.TORT_EXHAUSTED_STREAM,
      maxAckPending: c.TORT_MAX_ACK_PENDING,
      replicas: c.TORT_STREAM_REPLICAS,
    },
    log,
  );
  const js = jetstream(nc);
  const exhaustedConsumer = await js.consumers.get(c.TORT_EXHAUSTED_STREAM, c.TORT_CONSUMER);
  const configKv = await openConfigBucket(nc, c.TORT_CONFIG_BUCKET, c.TORT_STREAM_REPLICAS);
  const fleet =
    c.TORT_FLEET === "on"
      ? {
          rulesKv: await openRulesBucket(nc, c.TORT_RULES_BUCKET, c.TORT_STREAM_REPLICAS),
          store: await openSnapshotStore(nc, c.TORT_SNAPSHOT_BUCKET, { replicas: c.TORT_STREAM_REPLICAS, maxSnapshotBytes: c.TORT_SNAPSHOT_MAX_MB * 2 ** 20 }),
        }
      : null;
  return { jsm, js, exhaustedConsumer, configKv, fleet };
}
