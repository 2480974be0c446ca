/**
 * The credit pull against the real nats-server: the bound, exactly-once
 * delivery, and the credits of requests the server ends (expired, refused,
 * consumer deleted, consumer missing) coming back.
 */
import { AckPolicy, DeliverPolicy, jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import pino from "pino";
import type { Subscription } from "rxjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createByteBudget } from "../../src/gate/byte-budget.js";
import { createConcurrencyLimit, type ConcurrencyLimit } from "../../src/gate/concurrency-limit.js";
import { MESSAGE_RESERVE_BYTES, pullMessages, type PulledMessage } from "../../src/ingest/pull-messages.js";
import { connectTest, uniqueNames } from "../support/nats.js";

let nc: NatsConnection;
let jsm: JetStreamManager;
beforeAll(async () => {
  nc = await connectTest();
  jsm = await jetstreamManager(nc);
});
afterAll(async () => {
  await nc.drain();
});

const until = async (done: () => boolean, what: string, ms = 15_000) => {
  const deadline = Date.now() + ms;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

/** A stream with `count` messages and a durable consumer on it. */
async function topology(count: number, consumerConfig: { max_waiting?: number } = {}) {
  const names = uniqueNames();
  const stream = names.TORT_INPUT_STREAM!;
  const consumer = names.TORT_CONSUMER!;
  const subject = names.TORT_INPUT_SUBJECTS!.replace(">", "x");
  await jsm.streams.add({ name: stream, subjects: [names.TORT_INPUT_SUBJECTS!] });
  await jsm.consumers.add(stream, { durable_name: consumer, ack_policy: AckPolicy.Explicit, ack_wait: 30_000_000_000, ...consumerConfig });
  for (let i = 1; i <= count; i++) nc.publish(subject, String(i));
  await nc.flush();
  return { stream, consumer, subject, remove: () => jsm.streams.delete(stream).catch(() => {}) };
}

/** Pulls with `limit`; each message is acked after `holdMs`. Tracks the most held at once. */
function run(source: { stream: string; consumer: string }, limit: ConcurrencyLimit, holdMs: number, logged: string[] = [], expiresMs = 1_000) {
  const budget = createByteBudget(64 * MESSAGE_RESERVE_BYTES);
  const log = pino({ level: "warn" }, { write: (line: string) => void logged.push(line) });
  const drain = new AbortController();
  const seen: number[] = [];
  let held = 0;
  let mostHeld = 0;
  let completed = false;
  const settle = ({ msg, bytes }: PulledMessage) => {
    msg.ack();
    held--;
    limit.release(1);
    budget.release(bytes);
  };
  const subscription: Subscription = pullMessages({ nc, ...source }, limit, budget, { maxBatch: 8, expiresMs, retryDelayMs: 100, drainSignal: drain.signal }, log).subscribe({
    next: (pulled) => {
      held++;
      mostHeld = Math.max(mostHeld, held);
      seen.push(Number(new TextDecoder().decode(pulled.msg.data)));
      if (holdMs === 0) settle(pulled);
      else setTimeout(() => settle(pulled), holdMs);
    },
    complete: () => (completed = true),
  });
  return {
    seen,
    budget,
    logged,
    get mostHeld() {
      return mostHeld;
    },
    get completed() {
      return completed;
    },
    drain: () => drain.abort(),
    stop: () => subscription.unsubscribe(),
  };
}

/** Drains the pull and waits for it to complete; then every credit and every byte is back. */
async function drainedAllBack(r: ReturnType<typeof run>, limit: ConcurrencyLimit) {
  r.drain();
  await until(() => r.completed, "the drain to complete");
  expect(limit.inUse).toBe(0);
  expect(r.budget.inUse).toBe(0);
}
const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
const oneTo = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

describe("pullMessages", () => {
  it("never holds more than the limit, delivers each message once, and gives every credit back when drained", async () => {
    const t = await topology(300);
    const limit = createConcurrencyLimit(12);
    const r = run(t, limit, 3);
    await until(() => r.seen.length >= 300, "300 messages");
    await drainedAllBack(r, limit);
    expect(r.mostHeld).toBeLessThanOrEqual(12);
    expect(sorted(r.seen)).toEqual(oneTo(300));
    expect((await jsm.consumers.info(t.stream, t.consumer)).num_redelivered).toBe(0);
    await t.remove();
  });

  it("requests that expire on an empty stream give their credits back, and a message published later is pulled", async () => {
    const t = await topology(0);
    const limit = createConcurrencyLimit(16);
    const r = run(t, limit, 0);
    await until(() => limit.inUse === 16, "every credit asked for");
    // Each request expires after a second with all of its credits unused; the loop asks again.
    await new Promise((res) => setTimeout(res, 2_500));
    expect(limit.inUse).toBe(16);
    nc.publish(t.subject, "7");
    await until(() => r.seen.length === 1, "the late message");
    expect(r.seen).toEqual([7]);
    await drainedAllBack(r, limit); // open requests expire
    await t.remove();
  });

  it("drained while idle, it completes without waiting for its open requests to expire; a message published then stays in the stream", async () => {
    const t = await topology(0);
    const limit = createConcurrencyLimit(16);
    const r = run(t, limit, 0, [], 60_000);
    await until(() => limit.inUse === 16, "every credit asked for");
    r.drain();
    // Requests that would run for a minute are voided after a short grace: the drain completes at once.
    await until(() => r.completed, "the drain to complete before its requests expire", 10_000);
    expect(limit.inUse).toBe(0);
    expect(r.budget.inUse).toBe(0);
    nc.publish(t.subject, "9");
    await nc.flush();
    await new Promise((res) => setTimeout(res, 200));
    const info = await jsm.consumers.info(t.stream, t.consumer);
    // Not lost: waiting for the next pull, or delivered to a voided request and redelivered after the ack wait.
    expect(info.num_pending + info.num_ack_pending).toBe(1);
    console.log(`drained idle pull: a later message is ${info.num_pending === 1 ? "pending (the server dropped the voided requests)" : "delivered to a voided request (redelivered after the ack wait)"}`);
    r.stop();
    await t.remove();
  });

  it("requests the server refuses (max_waiting) give their credits back; everything is still delivered", async () => {
    const t = await topology(0, { max_waiting: 1 });
    const limit = createConcurrencyLimit(16); // batches of 8: two requests, one of them refused
    const r = run(t, limit, 0);
    await until(() => r.logged.some((l) => l.includes("Exceeded MaxWaiting")), "a refusal");
    for (let i = 1; i <= 50; i++) nc.publish(t.subject, String(i));
    await until(() => r.seen.length >= 50, "50 messages");
    await drainedAllBack(r, limit);
    expect(sorted(r.seen)).toEqual(oneTo(50));
    await t.remove();
  });

  it("a consumer deleted while pulled from, then created again: the credits of the void requests come back and pulling resumes", async () => {
    const t = await topology(20);
    const limit = createConcurrencyLimit(8);
    const r = run(t, limit, 0);
    await until(() => r.seen.length >= 20, "the first 20");
    await jsm.consumers.delete(t.stream, t.consumer);
    await until(() => r.logged.some((l) => l.includes("Consumer Deleted")), "the 409");
    // Requests to a consumer that is not there go unanswered: the watchdog voids them.
    await until(() => r.logged.some((l) => l.includes("nothing heard")), "the watchdog", 10_000);
    await jsm.consumers.add(t.stream, { durable_name: t.consumer, ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.New });
    for (let i = 21; i <= 40; i++) nc.publish(t.subject, String(i));
    await until(() => r.seen.length >= 40, "the next 20", 20_000);
    await drainedAllBack(r, limit);
    expect(sorted(r.seen)).toEqual(oneTo(40));
    await t.remove();
  }, 60_000);

  it("unsubscribing gives back the credits of open requests at once", async () => {
    const t = await topology(0);
    const limit = createConcurrencyLimit(16);
    const r = run(t, limit, 0);
    await until(() => limit.inUse === 16, "every credit asked for");
    r.stop();
    expect(limit.inUse).toBe(0);
    expect(r.budget.inUse).toBe(0);
    // Nothing published later is delivered to the stopped pull.
    nc.publish(t.subject, "1");
    await new Promise((res) => setTimeout(res, 300));
    expect(r.seen).toEqual([]);
    await t.remove();
  });
});
