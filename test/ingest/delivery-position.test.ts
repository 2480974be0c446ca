/** The hand reading of a delivery's ack subject against nats.js's own `msg.info`, both subject forms. */
import fc from "fast-check";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { describe, expect, it } from "vitest";
import { readDelivery } from "../../src/ingest/delivery-position.js";

// nats.js's parser, as `msg.info` uses it (the package exports only its entry points: reached by path).
const require = createRequire(import.meta.url);
const jsmsg = require(join(dirname(require.resolve("@nats-io/jetstream")), "jsmsg.js")) as { toJsMsg(m: unknown): { info: { streamSequence: number; pending: number } } };
const natsInfo = (reply: string) => jsmsg.toJsMsg({ reply, subject: "x", data: new Uint8Array(0) }).info;

const name = fc.stringMatching(/^[A-Za-z0-9_-]{1,12}$/);
const num = fc.oneof(fc.nat(), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }));
const v1 = fc.tuple(name, name, num, num, num, num, num).map(([s, c, d, sseq, cseq, ts, p]) => `$JS.ACK.${s}.${c}.${d}.${sseq}.${cseq}.${ts}.${p}`);
const v2 = fc.tuple(name, name, name, name, num, num, num, num, num, fc.option(name)).map(([dom, hash, s, c, d, sseq, cseq, ts, p, r]) => `$JS.ACK.${dom}.${hash}.${s}.${c}.${d}.${sseq}.${cseq}.${ts}.${p}${r === null ? "" : `.${r}`}`);

describe("readDelivery", () => {
  it("reads the stream sequence and the pending count as nats.js does, in both subject forms", () => {
    fc.assert(
      fc.property(fc.oneof(v1, v2), (reply) => {
        const into = { seq: -1, pending: -1 };
        expect(readDelivery(reply, into)).toBe(true);
        const info = natsInfo(reply);
        expect(into).toEqual({ seq: info.streamSequence, pending: info.pending });
      }),
      { numRuns: 2_000 },
    );
  });
  it("refuses what is not a delivery subject, leaving its target alone", () => {
    const into = { seq: 7, pending: 7 };
    for (const reply of ["", "_INBOX.abc", "$JS.ACK.s.c.1.2.3", "$JS.ACK.s.c.1.x.3.4.5", "$JS.ACK.s.c.1.2.3.4.", "$JS.API.s.c.1.2.3.4.5"]) {
      expect(readDelivery(reply, into)).toBe(false);
    }
    expect(into).toEqual({ seq: 7, pending: 7 });
  });
});
