/**
 * Real nats-server helpers: unique names per test, publishing inputs, and
 * reading back every verdict and dead letter.
 */
import { randomBytes } from "node:crypto";
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, type JsMsg } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { loadConfig, type Config } from "../../src/config.js";

export const TEST_NATS_URL = process.env.TEST_NATS_URL ?? process.env.NATS_URL ?? "nats://127.0.0.1:4222";

export const connectTest = () => connect({ servers: TEST_NATS_URL, name: "tortmatch-test" });

/** Stream, subject, consumer and bucket names no other test uses. */
export function uniqueNames(): Record<string, string> {
  const id = randomBytes(4).toString("hex");
  return {
    NATS_URL: TEST_NATS_URL,
    TORT_INPUT_STREAM: `T_IN_${id}`,
    TORT_INPUT_SUBJECTS: `t${id}.results.>`,
    TORT_CONSUMER: `tortmatch_${id}`,
    TORT_VERDICT_STREAM: `T_VERDICTS_${id}`,
    TORT_VERDICT_SUBJECT_PREFIX: `t${id}.verdicts`,
    TORT_DEADLETTER_STREAM: `T_DL_${id}`,
    TORT_DEADLETTER_SUBJECT: `t${id}.deadletter`,
    TORT_RULES_CHANGED_SUBJECT: `t${id}.rules.changed`,
    TORT_CONFIG_BUCKET: `cfg_${id}`,
    TORT_EXHAUSTED_STREAM: `T_EXH_${id}`,
    TORT_EXPLAIN_SUBJECT: `t${id}.explain`,
    TORT_RULES_BUCKET: `rules_${id}`,
    TORT_SNAPSHOT_BUCKET: `snaps_${id}`,
  };
}

/** A validated configuration for a test: unique names, quick timings, given overrides. */
export function testConfig(databaseUrl: string, overrides: Record<string, string> = {}): Config {
  return loadConfig({
    DATABASE_URL: databaseUrl,
    LOG_LEVEL: "silent",
    TORT_ACK_WAIT_MS: "5000",
    TORT_PUBLISH_TIMEOUT_MS: "1500",
    TORT_NAK_DELAY_MS: "200",
    TORT_DUPLICATE_WINDOW_MS: "120000",
    TORT_RETRY_BASE_MS: "100",
    TORT_RETRY_MAX_MS: "1000",
    TORT_REFRESH_INTERVAL_MS: "0",
    ...uniqueNames(),
    ...overrides,
  });
}

/** Publish each body to the input subjects; resolves with the stream sequence of each. */
export async function publishInputs(nc: NatsConnection, config: Config, bodies: (string | Uint8Array)[]): Promise<number[]> {
  const js = jetstream(nc);
  const jsm = await jetstreamManager(nc);
  try {
    await jsm.streams.info(config.TORT_INPUT_STREAM);
  } catch {
    await jsm.streams.add({ name: config.TORT_INPUT_STREAM, subjects: config.TORT_INPUT_SUBJECTS.split(",") });
  }
  const subject = config.TORT_INPUT_SUBJECTS.replace(">", "test");
  const enc = new TextEncoder();
  const seqs: number[] = [];
  for (let i = 0; i < bodies.length; i += 500) {
    const acks = await Promise.all(bodies.slice(i, i + 500).map((b) => js.publish(subject, typeof b === "string" ? enc.encode(b) : b)));
    seqs.push(...acks.map((a) => a.seq));
  }
  return seqs;
}

/** Every message now in a stream, in order (an ephemeral consumer, deleted afterwards). */
export async function readStream(nc: NatsConnection, stream: string): Promise<JsMsg[]> {
  const jsm = await jetstreamManager(nc);
  const info = await jsm.streams.info(stream);
  const total = info.state.messages;
  if (total === 0) return [];
  const name = `reader_${randomBytes(4).toString("hex")}`;
  await jsm.consumers.add(stream, { name, ack_policy: AckPolicy.None, deliver_policy: DeliverPolicy.All, inactive_threshold: 60_000_000_000 });
  const consumer = await jetstream(nc).consumers.get(stream, name);
  const out: JsMsg[] = [];
  // About 8 MiB a pull, from the stream's average message size: messages can be ~1 MiB, and an
  // unbounded burst makes a slow consumer whose dropped messages (never acked) would not come back.
  const perPull = Math.max(4, Math.min(1000, Math.floor((8 * 2 ** 20) / Math.max(1, info.state.bytes / total))));
  const deadline = Date.now() + 120_000;
  try {
    while (out.length < total) {
      if (Date.now() > deadline) throw new Error(`read ${out.length} of ${total} messages of ${stream} in 120 s`);
      const batch = await consumer.fetch({ max_messages: Math.min(perPull, total - out.length), expires: 2000 });
      for await (const m of batch) out.push(m);
    }
  } finally {
    await jsm.consumers.delete(stream, name).catch(() => {});
  }
  return out;
}

/** Verdicts as parsed JSON with their Nats-Msg-Id. */
export async function readVerdicts(nc: NatsConnection, config: Config) {
  const msgs = await readStream(nc, config.TORT_VERDICT_STREAM);
  return msgs.map((m) => ({ msgId: m.headers?.get("Nats-Msg-Id") ?? "", subject: m.subject, verdict: m.json<Record<string, unknown> & { source: { seq: number }; action: string; rulesVersion: string }>() }));
}

export async function consumerState(nc: NatsConnection, config: Config) {
  const info = await (await jetstreamManager(nc)).consumers.info(config.TORT_INPUT_STREAM, config.TORT_CONSUMER);
  return { pending: info.num_pending, ackPending: info.num_ack_pending, redelivered: info.num_redelivered };
}

/** Wait until `check` returns a truthy value (polling, bounded). */
export async function eventually<T>(check: () => Promise<T> | T, what: string, timeoutMs = 30_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
      last = v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (last: ${String(last)})`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Delete every stream and the bucket a test config names. */
export async function removeTopology(nc: NatsConnection, config: Config): Promise<void> {
  const jsm = await jetstreamManager(nc);
  for (const stream of [config.TORT_INPUT_STREAM, config.TORT_VERDICT_STREAM, config.TORT_DEADLETTER_STREAM, config.TORT_EXHAUSTED_STREAM, `KV_${config.TORT_CONFIG_BUCKET}`, `KV_${config.TORT_RULES_BUCKET}`, `OBJ_${config.TORT_SNAPSHOT_BUCKET}`]) {
    await jsm.streams.delete(stream).catch(() => {});
  }
}

/**
 * Every input accounted for by the sets of source sequences, never by counts:
 * `lost` are inputs with no output of the kind they should have (a verdict
 * for a valid one, a dead letter for an invalid one); `duplicated` those
 * with more than one output; `strays` outputs for no published input, or of
 * the wrong kind.
 */
export function accountFor(inputs: { seq: number; valid: boolean }[], verdictSeqs: number[], deadSeqs: number[]) {
  const count = (xs: number[]) => xs.reduce((m, s) => m.set(s, (m.get(s) ?? 0) + 1), new Map<number, number>());
  const verdicts = count(verdictSeqs);
  const dead = count(deadSeqs);
  const known = new Map(inputs.map((i) => [i.seq, i.valid]));
  const lost = inputs.filter((i) => !(i.valid ? verdicts.has(i.seq) : dead.has(i.seq))).map((i) => i.seq);
  const duplicated = inputs.filter((i) => (verdicts.get(i.seq) ?? 0) + (dead.get(i.seq) ?? 0) > 1).map((i) => i.seq);
  const strays = [...verdicts.keys()].filter((s) => known.get(s) !== true).concat([...dead.keys()].filter((s) => known.get(s) !== false));
  return { lost, duplicated, strays };
}
