/**
 * Settlement on the real server: no lost and no doubled results (spec
 * sections 5 and 6) when an ack throws, a PubAck is lost on the final
 * delivery, the dead-letter stream is away, an instance stalls on a message
 * until its deliveries run out, and a dead letter would exceed max_payload.
 */
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { nanos } from "@nats-io/nats-core";
import { describe, expect, it } from "vitest";
import type { Config } from "../../src/config.js";
import { decodeResult } from "../../src/ingest/decode-result.js";
import { ensureTopology } from "../../src/ingest/topology.js";
import { decideVerdict } from "../../src/match/match-result.js";
import { createLogger } from "../../src/ops/logger.js";
import { createRuleLoader } from "../../src/rules/load-rules.js";
import { createPublisher, type Publisher } from "../../src/verdict/publish.js";
import { deliveredMessage, settleMessage, type Settleable } from "../../src/verdict/settle-message.js";
import { eventually, publishInputs, readStream, readVerdicts, removeTopology, testConfig } from "../support/nats.js";
import { resultLines, startTestService, useServiceHarness } from "../support/service.js";

const h = useServiceHarness();
const log = createLogger("silent");
const start = (config: Config) => h.start(config);

/** The streams and consumer of a config, made as the service makes them, without a service. */
async function topology(config: Config) {
  const jsm = await jetstreamManager(h.nc);
  await ensureTopology(
    jsm,
    {
      inputStream: config.TORT_INPUT_STREAM,
      inputSubjects: [config.TORT_INPUT_SUBJECTS],
      consumer: config.TORT_CONSUMER,
      verdictStream: config.TORT_VERDICT_STREAM,
      verdictSubjectPrefix: config.TORT_VERDICT_SUBJECT_PREFIX,
      deadLetterStream: config.TORT_DEADLETTER_STREAM,
      deadLetterSubject: config.TORT_DEADLETTER_SUBJECT,
      ackWaitMs: config.TORT_ACK_WAIT_MS,
      maxDeliver: config.TORT_MAX_DELIVER,
      duplicateWindowMs: config.TORT_DUPLICATE_WINDOW_MS,
      exhaustedStream: config.TORT_EXHAUSTED_STREAM,
      maxAckPending: config.TORT_MAX_ACK_PENDING,
      replicas: 1,
    },
    log,
  );
  h.onCleanup(() => removeTopology(h.nc, config));
  const publisher = createPublisher(h.nc, {
    subjects: { verdictSubjectPrefix: config.TORT_VERDICT_SUBJECT_PREFIX, deadLetterSubject: config.TORT_DEADLETTER_SUBJECT },
    timeoutMs: config.TORT_PUBLISH_TIMEOUT_MS,
    maxPayload: () => h.nc.info!.max_payload,
    log,
  });
  h.onCleanup(async () => publisher.close());
  const consumer = await jetstream(h.nc).consumers.get(config.TORT_INPUT_STREAM, config.TORT_CONSUMER);
  const fetchOne = async () => {
    for await (const m of await consumer.fetch({ max_messages: 1, expires: 2_000 })) return m;
    throw new Error("no message delivered");
  };
  return { jsm, publisher, fetchOne };
}

const settleOptions = (publisher: Publisher, finalDelivery: number) => ({ publisher, finalDelivery, maxPublishAttempts: 3, nakDelayMs: 200, log });

describe("settlement on the real server", () => {
  it("an ack that throws is not a failed publish: one verdict, no nak, no dead letter", async () => {
    const config = testConfig(h.db.url);
    const { publisher, fetchOne } = await topology(config);
    const snapshot = await createRuleLoader(h.db.database).loadFull();
    const [line] = resultLines(1);
    await publishInputs(h.nc, config, [line!]);
    const msg = await fetchOne();
    let naks = 0;
    const delivered = deliveredMessage(msg);
    const input: Settleable = {
      data: delivered.data,
      source: delivered.source,
      delivery: delivered.delivery,
      storedAtMs: delivered.storedAtMs,
      ack: () => {
        throw new Error("connection closed");
      },
      nak: () => void naks++,
      term: () => delivered.term(),
      working: () => delivered.working(),
    };
    const decided = decideVerdict(decodeResult(msg.data), snapshot, input.source, new Date().toISOString());
    const settled = await settleMessage(input, decided, settleOptions(publisher, config.TORT_MAX_DELIVER));
    expect(settled.outcome).toBe("verdict");
    expect(naks).toBe(0);
    expect(await readVerdicts(h.nc, config)).toHaveLength(1);
    expect(await readStream(h.nc, config.TORT_DEADLETTER_STREAM)).toHaveLength(0);
  });

  it("a PubAck lost on the final delivery is retried: the stored verdict is found as a duplicate, never also a dead letter", async () => {
    const config = testConfig(h.db.url, { TORT_MAX_DELIVER: "1" });
    const { publisher, fetchOne } = await topology(config);
    const snapshot = await createRuleLoader(h.db.database).loadFull();
    await publishInputs(h.nc, config, resultLines(1));
    const msg = await fetchOne();
    expect(msg.info.deliveryCount).toBe(1); // the final delivery (TORT_MAX_DELIVER = 1)
    // The first publish reaches the stream, but its PubAck is lost (as in a timeout).
    let attempts = 0;
    const losingFirstAck: Publisher = {
      ...publisher,
      async publishVerdict(verdict, source) {
        const real = await publisher.publishVerdict(verdict, source);
        return ++attempts === 1 ? { kind: "failed", certainty: "unknown", error: "TIMEOUT" } : real;
      },
    };
    const input = deliveredMessage(msg);
    const decided = decideVerdict(decodeResult(msg.data), snapshot, input.source, new Date().toISOString());
    const settled = await settleMessage(input, decided, settleOptions(losingFirstAck, 1));
    expect(settled.outcome).toBe("duplicate-verdict");
    expect(attempts).toBe(2);
    expect(await readVerdicts(h.nc, config)).toHaveLength(1);
    expect(await readStream(h.nc, config.TORT_DEADLETTER_STREAM)).toHaveLength(0);
  });

  it("a dead letter that cannot be published on the last delivery is not lost: it is written once the stream is back", async () => {
    const config = testConfig(h.db.url, { TORT_MAX_DELIVER: "1", TORT_NAK_DELAY_MS: "300" });
    const service = await start(config);
    await eventually(() => service.snapshot$.value, "first snapshot");
    const jsm = await jetstreamManager(h.nc);
    const deadLetterConfig = (await jsm.streams.info(config.TORT_DEADLETTER_STREAM)).config;
    await jsm.streams.delete(config.TORT_DEADLETTER_STREAM);
    const [seq] = await publishInputs(h.nc, config, ['{"aid": "not a number"}']);
    // Delivery 1 (final) and the consumer's extra delivery 2 both fail to dead-letter.
    await eventually(() => service.stats.outcomes.stuck >= 2, "both deliveries unsettled", 20_000);
    expect(service.stats.outcomes["dead-letter"]).toBe(0);
    // The deliveries ran out: the server's advisory waits in the exhausted stream until the worker can settle it.
    await eventually(async () => (await jsm.streams.info(config.TORT_EXHAUSTED_STREAM)).state.messages === 1, "the max-deliveries advisory kept");
    await jsm.streams.add({ ...deadLetterConfig, duplicate_window: nanos(config.TORT_DUPLICATE_WINDOW_MS) });
    const dead = await eventually(async () => {
      const msgs = await readStream(h.nc, config.TORT_DEADLETTER_STREAM);
      return msgs.length > 0 ? msgs : null;
    }, "the dead letter written by the exhausted-deliveries worker", 20_000);
    expect(dead).toHaveLength(1);
    expect(dead![0]!.headers?.get("Tort-Source-Seq")).toBe(String(seq));
    expect(dead![0]!.headers?.get("Tort-Error")).toMatch(/Expected/);
    expect(await readVerdicts(h.nc, config)).toHaveLength(0);
  });

  it("deliveries used up by a stalled instance still end settled: a verdict for the valid input, a dead letter for the invalid one", async () => {
    const config = testConfig(h.db.url, { TORT_MAX_DELIVER: "1", TORT_ACK_WAIT_MS: "2000" });
    const { jsm, fetchOne } = await topology(config);
    const [validSeq, invalidSeq] = await publishInputs(h.nc, config, [resultLines(1)[0]!, "not json at all"]);
    // A stalled instance takes each message and never settles it, until the consumer gives up (max_deliver 2).
    const deliveries = new Map<number, number>();
    await eventually(async () => {
      const m = await fetchOne().catch(() => null);
      if (m !== null) deliveries.set(m.seq, m.info.deliveryCount);
      return (await jsm.streams.info(config.TORT_EXHAUSTED_STREAM)).state.messages === 2;
    }, "both inputs' deliveries used up", 30_000, 10);
    expect([...deliveries.values()].every((d) => d <= 2)).toBe(true);

    const service = await startTestService(config, h.nc);
    h.onCleanup(() => service.stop());
    const verdicts = await eventually(async () => {
      const v = await readVerdicts(h.nc, config);
      return v.length > 0 ? v : null;
    }, "the valid input's verdict", 20_000);
    const dead = await eventually(async () => {
      const d = await readStream(h.nc, config.TORT_DEADLETTER_STREAM);
      return d.length > 0 ? d : null;
    }, "the invalid input's dead letter", 20_000);
    await eventually(async () => (await jsm.consumers.info(config.TORT_EXHAUSTED_STREAM, config.TORT_CONSUMER)).num_ack_pending === 0, "advisories acked");
    expect(verdicts!.map((v) => v.verdict.source.seq)).toEqual([validSeq]);
    expect(dead!.map((d) => Number(d.headers?.get("Tort-Source-Seq")))).toEqual([invalidSeq]);
  });

  it("a dead letter that would exceed max_payload is cut to fit, with the original length in a header", async () => {
    const config = testConfig(h.db.url);
    await start(config);
    const maxPayload = h.nc.info!.max_payload;
    const body = new Uint8Array(maxPayload - 200).fill(0x61); // "aaaa…": not JSON, and too big once the reason is added
    const [seq] = await publishInputs(h.nc, config, [body]);
    const dead = await eventually(async () => {
      const d = await readStream(h.nc, config.TORT_DEADLETTER_STREAM);
      return d.length > 0 ? d : null;
    }, "the dead letter", 20_000);
    expect(dead).toHaveLength(1);
    const letter = dead![0]!;
    expect(letter.headers?.get("Tort-Source-Seq")).toBe(String(seq));
    expect(letter.headers?.get("Tort-Truncated")).toBe(String(body.length));
    expect(letter.data.length).toBeLessThan(body.length);
    expect(letter.data.every((b) => b === 0x61)).toBe(true);
  });

  it("no second verdict for a redelivery that comes after the duplicate window (a window of 3 s)", async () => {
    const window = { TORT_DUPLICATE_WINDOW_MS: "3000", TORT_ACK_WAIT_MS: "1000", TORT_PUBLISH_TIMEOUT_MS: "500", TORT_NAK_DELAY_MS: "0", TORT_MAX_DELIVER: "2" };
    const config = testConfig(h.db.url, window);
    const { publisher, fetchOne } = await topology(config);
    const snapshot = await createRuleLoader(h.db.database).loadFull();
    const [publishedSeq, unpublishedSeq] = await publishInputs(h.nc, config, resultLines(2));
    // A first instance takes both: it publishes the first one's verdict and dies before acking;
    // it dies before publishing anything for the second.
    const first = await fetchOne();
    const second = await fetchOne();
    expect([first.seq, second.seq]).toEqual([publishedSeq, unpublishedSeq]);
    const input = deliveredMessage(first);
    const decided = decideVerdict(decodeResult(first.data), snapshot, input.source, new Date().toISOString());
    if (!decided.ok) throw new Error(decided.reason);
    expect((await publisher.publishVerdict(decided.verdict, input.source)).kind).toBe("stored");
    // The outage outlasts the duplicate window: the Msg-Id alone would let a second verdict in now.
    await new Promise((r) => setTimeout(r, 4_000));
    const service = await startTestService(config, h.nc);
    h.onCleanup(() => service.stop());
    // Settled by the pipeline or, if a pull failed and the deliveries ran out, by the exhausted-deliveries worker.
    await eventually(async () => (await readVerdicts(h.nc, config)).some((v) => v.verdict.source.seq === unpublishedSeq), "the other input's verdict", 20_000);
    await eventually(async () => (await jetstreamManager(h.nc)).consumers.info(config.TORT_INPUT_STREAM, config.TORT_CONSUMER).then((i) => i.num_pending === 0 && i.num_ack_pending === 0), "nothing left to deliver", 20_000);
    await new Promise((r) => setTimeout(r, 1_500));
    const verdicts = await readVerdicts(h.nc, config);
    expect(verdicts.map((v) => v.verdict.source.seq).sort((a, b) => a - b)).toEqual([publishedSeq, unpublishedSeq]);
  });
});
