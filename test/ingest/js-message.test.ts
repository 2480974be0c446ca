/**
 * The one-pass ack-subject parser against nats.js's own (JsMsg#info, made by
 * its toJsMsg), over generated subjects of both forms and broken ones, and on
 * messages delivered by the real server.
 */
import { AckPolicy, jetstreamManager } from "@nats-io/jetstream";
import type { Msg } from "@nats-io/nats-core";
import { createRequire } from "node:module";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { jsMessage, parseAckSubject } from "../../src/ingest/js-message.js";
import { connectTest, uniqueNames } from "../support/nats.js";

/** nats.js's own JsMsg, whose info getter parses the subject its way. */
const { toJsMsg } = createRequire(createRequire(import.meta.url).resolve("@nats-io/jetstream"))("./jsmsg.js") as { toJsMsg: (m: Msg, t: number) => { info: unknown } };
const theirs = (reply: string) => {
  try {
    return toJsMsg({ reply } as Msg, 5_000).info;
  } catch {
    return null;
  }
};

const name = fc.stringMatching(/^[A-Za-z0-9_-]{1,24}$/);
const digits = fc.oneof(fc.nat({ max: 10_000 }).map(String), fc.bigInt({ min: 0n, max: 2n ** 64n }).map(String));

describe("parseAckSubject", () => {
  it("reads both forms of the ack subject as nats.js does", () => {
    const short = fc.tuple(name, name, digits, digits, digits, digits, digits).map((t) => `$JS.ACK.${t.join(".")}`);
    const long = fc
      .tuple(fc.oneof(fc.constant("_"), name), name, name, name, digits, digits, digits, digits, digits, fc.array(name, { minLength: 0, maxLength: 2 }))
      .map(([d, h, s, c, ...rest]) => `$JS.ACK.${[d, h, s, c, ...rest.slice(0, 5), ...(rest[5] as string[])].join(".")}`);
    fc.assert(
      fc.property(fc.oneof(short, long), (reply) => {
        expect(parseAckSubject(reply)).toEqual(theirs(reply));
      }),
      { numRuns: 2_000 },
    );
  });

  it("leaves whatever it does not take to nats.js (null), never a different reading", () => {
    const token = fc.oneof(name, digits, fc.constantFrom("", "1e3", "0x10", " 1", "-1", "1.5"));
    const any = fc.oneof(
      fc.array(token, { minLength: 0, maxLength: 13 }).map((ts) => `$JS.ACK.${ts.join(".")}`),
      fc.array(token, { minLength: 0, maxLength: 13 }).map((ts) => ts.join(".")),
      fc.string(),
    );
    fc.assert(
      fc.property(any, (reply) => {
        const ours = parseAckSubject(reply);
        if (ours !== null) expect(ours).toEqual(theirs(reply));
      }),
      { numRuns: 3_000 },
    );
    expect(parseAckSubject("$JS.ACK.S.C.1.2.3.4")).toBeNull(); // a token short
    expect(parseAckSubject("$JS.ACK.S.C.1.2.3.x.5")).toBeNull();
  });

  it("on messages the real server delivers, jsMessage's info equals nats.js's", async () => {
    const nc = await connectTest();
    try {
      const jsm = await jetstreamManager(nc);
      const names = uniqueNames();
      const stream = names.TORT_INPUT_STREAM!;
      await jsm.streams.add({ name: stream, subjects: [names.TORT_INPUT_SUBJECTS!] });
      await jsm.consumers.add(stream, { durable_name: "c", ack_policy: AckPolicy.Explicit });
      for (let i = 0; i < 5; i++) nc.publish(names.TORT_INPUT_SUBJECTS!.replace(">", "x"), String(i));
      await nc.flush();
      const got: Msg[] = [];
      const inbox = `_INBOX.${names.TORT_CONSUMER}`;
      const sub = nc.subscribe(inbox, { callback: (_e, m) => void got.push(m) });
      nc.publish(`$JS.API.CONSUMER.MSG.NEXT.${stream}.c`, JSON.stringify({ batch: 5, expires: 2e9 }), { reply: inbox });
      for (let i = 0; i < 200 && got.length < 5; i++) await new Promise((r) => setTimeout(r, 10));
      sub.unsubscribe();
      expect(got).toHaveLength(5);
      for (const m of got) {
        const ours = jsMessage(m);
        expect(ours.info).toEqual(theirs(m.reply!));
        expect(ours.seq).toBe((theirs(m.reply!) as { streamSequence: number }).streamSequence);
        expect((ours as unknown as { di: unknown }).di).toBeDefined(); // parsed by us, not left to nats.js
      }
      await jsm.streams.delete(stream);
    } finally {
      await nc.close();
    }
  });
});
