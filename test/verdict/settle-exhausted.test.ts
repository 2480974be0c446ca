/**
 * The exhausted-deliveries worker never drops an input silently: an input it cannot settle by its
 * advisory's last delivery is given up loudly (error log with the input's sequence, onGaveUp, the
 * advisory terminated), on a real nats-server.
 */
import { AckPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureTopology, EXHAUSTED_RETENTION, maxDeliveriesAdvisory } from "../../src/ingest/topology.js";
import { startExhaustedWorker } from "../../src/verdict/settle-exhausted.js";
import type { SettleOptions } from "../../src/verdict/settle-message.js";
import { connectTest, eventually, uniqueNames } from "../support/nats.js";
import { resultLines } from "../support/service.js";

let nc: NatsConnection;
beforeAll(async () => {
  nc = await connectTest();
});
afterAll(async () => {
  await nc?.drain();
});

describe("exhausted-deliveries stream", () => {
  it("is bounded: created with limits, and an existing one without them gets them", async () => {
    const jsm = await jetstreamManager(nc);
    const log = pino({ level: "silent" });
    const topology = (n: Record<string, string>) => ({
      inputStream: n.TORT_INPUT_STREAM!, inputSubjects: [n.TORT_INPUT_SUBJECTS!], consumer: n.TORT_CONSUMER!, verdictStream: n.TORT_VERDICT_STREAM!,
      verdictSubjectPrefix: n.TORT_VERDICT_SUBJECT_PREFIX!, deadLetterStream: n.TORT_DEADLETTER_STREAM!, deadLetterSubject: n.TORT_DEADLETTER_SUBJECT!,
      ackWaitMs: 5_000, maxDeliver: 5, duplicateWindowMs: 120_000, exhaustedStream: n.TORT_EXHAUSTED_STREAM!, maxAckPending: 100, replicas: 1,
    });
    const fresh = uniqueNames();
    const old = uniqueNames();
    // As an earlier version made it: no limits.
    await jsm.streams.add({ name: old.TORT_EXHAUSTED_STREAM!, subjects: [maxDeliveriesAdvisory(old.TORT_INPUT_STREAM!, old.TORT_CONSUMER!)] });
    try {
      for (const n of [fresh, old]) {
        await ensureTopology(jsm, topology(n), log);
        const config = (await jsm.streams.info(n.TORT_EXHAUSTED_STREAM!)).config;
        expect({ max_msgs: config.max_msgs, max_age: config.max_age }).toEqual(EXHAUSTED_RETENTION);
      }
    } finally {
      for (const n of [fresh, old]) for (const s of [n.TORT_INPUT_STREAM!, n.TORT_VERDICT_STREAM!, n.TORT_DEADLETTER_STREAM!, n.TORT_EXHAUSTED_STREAM!]) await jsm.streams.delete(s).catch(() => {});
    }
  });
});

describe("exhausted-deliveries worker", () => {
  it("gives up an input it cannot settle by its advisory's last delivery: logged with its sequence and counted, never silently", async () => {
    const names = uniqueNames();
    const jsm = await jetstreamManager(nc);
    const js = jetstream(nc);
    const input = names.TORT_INPUT_STREAM!;
    const advisories = names.TORT_EXHAUSTED_STREAM!;
    const advisorySubject = `t.${advisories}.advisory`;
    await jsm.streams.add({ name: input, subjects: [names.TORT_INPUT_SUBJECTS!] });
    await jsm.streams.add({ name: advisories, subjects: [advisorySubject] });
    await jsm.consumers.add(advisories, { durable_name: "worker", ack_policy: AckPolicy.Explicit, ack_wait: 2_000_000_000, max_deliver: 3 });
    const stored = await js.publish(names.TORT_INPUT_SUBJECTS!.replace(">", "x"), resultLines(1, 0)[0]!);
    await js.publish(advisorySubject, JSON.stringify({ stream_seq: stored.seq, deliveries: 6 }));

    const logged: string[] = [];
    const log = pino({ level: "warn" }, { write: (line: string) => void logged.push(line) });
    const gaveUp: { seq: number; reason: string }[] = [];
    const worker = startExhaustedWorker({
      consumer: await js.consumers.get(advisories, "worker"),
      jsm,
      inputStream: input,
      snapshot: () => null, // no rules yet: a valid input cannot be matched
      settle: {} as SettleOptions, // never reached without a snapshot
      retryDelayMs: 100,
      now: () => new Date(),
      log,
      maxDeliver: 3,
      onGaveUp: (source, reason) => gaveUp.push({ seq: source.seq, reason }),
    });
    try {
      await eventually(() => gaveUp.length > 0 || null, "the input given up", 20_000, 20);
      expect(gaveUp).toEqual([{ seq: stored.seq, reason: "no rule snapshot to match it with" }]);
      expect(logged.some((l) => l.includes("could not be settled: given up") && l.includes(`"seq":${stored.seq}`))).toBe(true);
      // The advisory is done with (terminated), not left for ever; the input stays in its stream.
      await eventually(async () => (await jsm.consumers.info(advisories, "worker")).num_ack_pending === 0 || null, "the advisory settled", 10_000, 50);
      expect((await jsm.streams.getMessage(input, { seq: stored.seq }))?.seq).toBe(stored.seq);
    } finally {
      await worker.stop();
      await jsm.streams.delete(input);
      await jsm.streams.delete(advisories);
    }
  });
});
