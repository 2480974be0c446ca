/**
 * Publishes on one PubAck inbox against the real nats-server: every answer
 * reaches the publish it belongs to (also out of order), a duplicate is
 * reported as one, and a refusal, a missing stream, a silent responder and a
 * close each end the publish with the error the settlement classifies.
 */
import { JetStreamApiError, jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { errors, headers } from "@nats-io/nats-core";
import type { NatsConnection } from "@nats-io/transport-node";
import fc from "fast-check";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createJetStreamPublish, type JetStreamPublish } from "../../src/verdict/jetstream-publish.js";
import { classifyPublishError } from "../../src/verdict/publish.js";
import { connectTest, readStream, uniqueNames } from "../support/nats.js";

let nc: NatsConnection;
let jsm: JetStreamManager;
const log = pino({ level: "silent" });
const open: JetStreamPublish[] = [];
beforeAll(async () => {
  nc = await connectTest();
  jsm = await jetstreamManager(nc);
});
afterAll(async () => {
  for (const p of open) p.close();
  await nc.drain();
});

const publisher = (timeoutMs = 5_000) => {
  const p = createJetStreamPublish(nc, { timeoutMs, log });
  open.push(p);
  return p;
};

/** A stream of its own on `<name>.>`. */
async function stream(config: Record<string, unknown> = {}) {
  const name = uniqueNames().TORT_VERDICT_STREAM!;
  await jsm.streams.add({ name, subjects: [`${name}.>`], ...config });
  return { name, subject: `${name}.x`, remove: () => jsm.streams.delete(name).catch(() => {}) };
}

const bytes = (s: string) => new TextEncoder().encode(s);

describe("JetStream publishes on one PubAck inbox", () => {
  it("stores each message once: every publish gets its own PubAck, a repeated Nats-Msg-Id is a duplicate", async () => {
    const s = await stream();
    const p = publisher();
    try {
      const acks = await Promise.all(Array.from({ length: 500 }, (_, i) => p.publish(s.subject, bytes(`m${i}`), `id-${i}`)));
      expect(acks.map((a) => a.seq)).toEqual(Array.from({ length: 500 }, (_, i) => i + 1));
      expect(acks.every((a) => a.stream === s.name && !a.duplicate)).toBe(true);
      const again = await p.publish(s.subject, bytes("m7 again"), "id-7");
      expect(again).toEqual({ stream: s.name, seq: 8, duplicate: true });
      expect(p.pending).toBe(0);
      const stored = await readStream(nc, s.name);
      expect(stored).toHaveLength(500);
      expect(stored.map((m) => [m.headers?.get("Nats-Msg-Id"), new TextDecoder().decode(m.data)])).toEqual(Array.from({ length: 500 }, (_, i) => [`id-${i}`, `m${i}`]));
    } finally {
      await s.remove();
    }
  });

  it("keeps the headers it is given and adds the Nats-Msg-Id", async () => {
    const s = await stream();
    const p = publisher();
    try {
      const h = headers();
      h.set("Tort-Error", "body: not JSON");
      await p.publish(s.subject, bytes("x"), "deadletter:s:1", h);
      const [m] = await readStream(nc, s.name);
      expect(m!.headers?.get("Tort-Error")).toBe("body: not JSON");
      expect(m!.headers?.get("Nats-Msg-Id")).toBe("deadletter:s:1");
    } finally {
      await s.remove();
    }
  });

  it("hands each answer to the publish it belongs to, in whatever order the answers come", async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 60 }).chain((n) => fc.tuple(fc.constant(n), fc.shuffledSubarray(Array.from({ length: n }, (_, i) => i), { minLength: n, maxLength: n }))), async ([n, order]) => {
        // A responder on a plain subject: it collects the n requests, then answers them in `order`.
        const subject = `${uniqueNames().TORT_VERDICT_STREAM!}.echo`;
        const asked: { reply: string; body: string }[] = [];
        const sub = nc.subscribe(subject, {
          callback: (_err, msg) => {
            asked.push({ reply: msg.reply!, body: msg.string() });
            if (asked.length < n) return;
            for (const k of order) nc.publish(asked[k]!.reply, JSON.stringify({ stream: asked[k]!.body, seq: k + 1, duplicate: k % 2 === 0 }));
          },
        });
        const p = publisher();
        try {
          const acks = await Promise.all(Array.from({ length: n }, (_, i) => p.publish(subject, bytes(`b${i}`), `id-${i}`)));
          expect(acks).toEqual(Array.from({ length: n }, (_, i) => ({ stream: `b${i}`, seq: i + 1, duplicate: i % 2 === 0 })));
        } finally {
          sub.unsubscribe();
          p.close();
        }
      }),
      { numRuns: 25 },
    );
  });

  it("a refusal is the stream's API error (refused); no stream on the subject is no responders (unknown)", async () => {
    const s = await stream({ max_msg_size: 16 });
    const p = publisher();
    try {
      const refused = await p.publish(s.subject, bytes("x".repeat(64)), "big").catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(JetStreamApiError);
      expect(classifyPublishError(refused)).toMatchObject({ kind: "failed", certainty: "refused" });
      const nobody = await p.publish(`${s.name}-none.x`, bytes("x"), "n").catch((e: unknown) => e);
      expect(nobody).toBeInstanceOf(errors.NoRespondersError);
      expect(classifyPublishError(nobody)).toMatchObject({ kind: "failed", certainty: "unknown" });
      expect(p.pending).toBe(0);
    } finally {
      await s.remove();
    }
  });

  it("an answer that never comes times out (unknown); a late answer after it is dropped", async () => {
    const subject = `${uniqueNames().TORT_VERDICT_STREAM!}.silent`;
    let reply = "";
    const sub = nc.subscribe(subject, { callback: (_err, msg) => void (reply = msg.reply!) });
    await nc.flush();
    const p = publisher(200);
    try {
      const err = await p.publish(subject, bytes("x"), "t").catch((e: unknown) => e);
      expect(err).toBeInstanceOf(errors.TimeoutError);
      expect(classifyPublishError(err)).toMatchObject({ certainty: "unknown" });
      expect(p.pending).toBe(0);
      // The late answer finds nobody waiting, and a new publish still gets its own.
      nc.publish(reply, JSON.stringify({ stream: "late", seq: 1 }));
      const next = p.publish(subject, bytes("y"), "u");
      await nc.flush();
      await new Promise((r) => setTimeout(r, 20));
      nc.publish(reply.replace(/\.\d+$/, ".2"), JSON.stringify({ stream: "own", seq: 2 }));
      expect(await next).toEqual({ stream: "own", seq: 2, duplicate: false });
    } finally {
      sub.unsubscribe();
    }
  });

  it("close() ends every publish still waiting (unknown) and refuses new ones", async () => {
    const subject = `${uniqueNames().TORT_VERDICT_STREAM!}.silent`;
    const sub = nc.subscribe(subject, { callback: () => {} });
    const p = publisher();
    try {
      const waiting = [p.publish(subject, bytes("a"), "a").catch((e: unknown) => e), p.publish(subject, bytes("b"), "b").catch((e: unknown) => e)];
      expect(p.pending).toBe(2);
      p.close();
      for (const err of await Promise.all(waiting)) {
        expect(err).toBeInstanceOf(errors.ClosedConnectionError);
        expect(classifyPublishError(err)).toMatchObject({ certainty: "unknown" });
      }
      expect(() => p.publish(subject, bytes("c"), "c")).toThrow(errors.ClosedConnectionError);
    } finally {
      sub.unsubscribe();
    }
  });
});
