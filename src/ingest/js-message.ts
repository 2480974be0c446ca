/**
 * A delivered core message as nats.js's JsMsg, made the way nats.js makes it
 * (`toJsMsg`, which its package does not export: read from its own file, the
 * package is pinned; see the README's Performance section), with its delivery
 * info parsed from the ack subject in one pass instead of nats.js's split into
 * a dozen strings (1.4 → 0.7 µs a message on Node 20). The info is the same
 * object nats.js would parse (test/ingest/js-message.test.ts compares them);
 * a subject this parser does not take is left to nats.js's own parse.
 */
import type { DeliveryInfo, JsMsg } from "@nats-io/jetstream";
import type { Msg } from "@nats-io/nats-core";
import { createRequire } from "node:module";

/** How long a JsMsg waits for the server's answer to an ack it asked to be confirmed (ackAck); tortmatch does not ask. */
const ACK_ANSWER_TIMEOUT_MS = 5_000;

const toJsMsg: (msg: Msg, ackTimeoutMs: number) => JsMsg = (() => {
  const jetstreamLib = createRequire(createRequire(import.meta.url).resolve("@nats-io/jetstream"));
  const fn = (jetstreamLib("./jsmsg.js") as { toJsMsg?: unknown }).toJsMsg;
  if (typeof fn !== "function") throw new Error("@nats-io/jetstream's lib/jsmsg.js has no toJsMsg: src/ingest/js-message.ts needs the pinned version (3.4.0)");
  return fn as (msg: Msg, ackTimeoutMs: number) => JsMsg;
})();

/** Whether nats.js's JsMsg keeps its parsed info in `di` (read when `info` is asked for): else it parses for itself. */
const keepsInfoInDi = "di" in (toJsMsg({ reply: "" } as Msg, ACK_ANSWER_TIMEOUT_MS) as object);

/**
 * The delivery info of a JetStream ack subject, as nats.js parses it:
 * `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<nanos>.<pending>`, or
 * the form with `<domain>.<account hash>` after `$JS.ACK` and a token at the
 * end. Null for anything else (nats.js's parse then decides).
 */
export function parseAckSubject(reply: string): DeliveryInfo | null {
  if (!reply.startsWith("$JS.ACK.")) return null;
  // Dots after "$JS.ACK": positions of the token ends.
  const dots: number[] = [];
  for (let i = reply.indexOf(".", 8); i !== -1; i = reply.indexOf(".", i + 1)) dots.push(i);
  // Tokens from "$JS.ACK": 9 (6 dots after the first 8 characters) or 11 and more (8 and more).
  const n = dots.length;
  let domain = "";
  let accountHash = "";
  let first: number; // index in `dots` of the end of the stream token
  if (n === 6) first = 0;
  else if (n >= 8) {
    domain = reply.slice(8, dots[0]);
    if (domain === "_") domain = "";
    accountHash = reply.slice(dots[0]! + 1, dots[1]);
    first = 2;
  } else return null;
  const start = (k: number) => (k === 0 ? (first === 0 ? 8 : dots[first - 1]! + 1) : dots[first + k - 1]! + 1);
  const end = (k: number) => (first + k < n ? dots[first + k]! : reply.length);
  const token = (k: number) => reply.slice(start(k), end(k));
  const number = (k: number) => digitsAt(reply, start(k), end(k));
  const deliveryCount = number(2);
  const info: DeliveryInfo = {
    domain,
    account_hash: accountHash,
    stream: token(0),
    consumer: token(1),
    deliveryCount,
    redelivered: deliveryCount > 1,
    streamSequence: number(3),
    deliverySequence: number(4),
    timestampNanos: number(5),
    pending: number(6),
  };
  // Anything unusual (not digits) is left to nats.js, whose parseInt reads such tokens its own way.
  if (Number.isNaN(info.deliveryCount + info.streamSequence + info.deliverySequence + info.timestampNanos + info.pending)) return null;
  return info;
}

/**
 * The number written by the digits of s[from, to), as parseInt reads it; NaN unless there are 1 to
 * 20 digits and nothing else (parseInt may round differently past 20 significant digits).
 */
function digitsAt(s: string, from: number, to: number): number {
  const length = to - from;
  if (length <= 0 || length > 20) return Number.NaN;
  let n = 0;
  for (let i = from; i < to; i++) {
    const digit = s.charCodeAt(i) - 48;
    if (digit < 0 || digit > 9) return Number.NaN;
    n = n * 10 + digit;
  }
  // Exact below 2^53 (up to 15 digits); longer ones (the timestamp's 19) as Number reads them: correctly rounded, as parseInt.
  return length <= 15 ? n : Number(s.slice(from, to));
}

/** The JsMsg of a message a pull request delivered. */
export function jsMessage(msg: Msg): JsMsg {
  const m = toJsMsg(msg, ACK_ANSWER_TIMEOUT_MS);
  if (keepsInfoInDi && msg.reply) {
    const info = parseAckSubject(msg.reply);
    if (info !== null) (m as unknown as { di: DeliveryInfo }).di = info;
  }
  return m;
}
