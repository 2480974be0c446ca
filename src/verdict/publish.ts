/**
 * Verdicts and dead letters leave through JetStream, each awaited until its
 * PubAck, each with a message id derived from the input's stream sequence so
 * a redelivered input can never yield a second verdict or dead letter. A
 * publish never throws: it ends in a PublishOutcome that says whether the
 * stream stored it, knew it already, refused it, or left it unknown.
 */
import { JetStreamApiError } from "@nats-io/jetstream";
import { errors, headers, type MsgHdrs, type NatsConnection } from "@nats-io/nats-core";
import type { Logger } from "pino";
import type { Verdict, VerdictSource } from "../match/types.js";
import type { PublishOutcome } from "./decide-settlement.js";
import { createJetStreamPublish } from "./jetstream-publish.js";

export interface OutputSubjects {
  readonly verdictSubjectPrefix: string;
  readonly deadLetterSubject: string;
}

/** Nats-Msg-Id of the verdict for an input (spec section 5). */
export const verdictMsgId = (source: VerdictSource) => `${source.stream}:${source.seq}`;
/** Nats-Msg-Id of the dead letter for an input. */
export const deadLetterMsgId = (source: VerdictSource) => `deadletter:${verdictMsgId(source)}`;

/** Longest `Tort-Error` header, in characters. */
export const MAX_REASON_CHARS = 500;
/** Room kept for the headers the client and server add to a dead letter (Nats-Msg-Id, the header block's framing). */
const HEADER_ROOM = 512;

/**
 * Refused: the stream answered with an error (it checks for a duplicate first,
 * so a verdict it already holds is never refused), or the client refused to
 * send (payload over max_payload). Anything else — a timeout, no responders,
 * a lost connection — leaves the outcome unknown.
 */
export function classifyPublishError(err: unknown): PublishOutcome {
  const error = (err instanceof Error ? err.message : String(err)).replace(/\s+/g, " ").slice(0, MAX_REASON_CHARS);
  const refused = err instanceof JetStreamApiError || err instanceof errors.InvalidArgumentError;
  return { kind: "failed", certainty: refused ? "refused" : "unknown", error };
}

const STORED: PublishOutcome = Object.freeze({ kind: "stored" });
const DUPLICATE: PublishOutcome = Object.freeze({ kind: "duplicate" });
const ackOutcome = (ack: { duplicate: boolean }): PublishOutcome => (ack.duplicate ? DUPLICATE : STORED);

/** The publish's outcome; a then() rather than an async wrapper: one promise less per message. */
const attempt = (publish: () => Promise<{ duplicate: boolean }>): Promise<PublishOutcome> => {
  try {
    return publish().then(ackOutcome, classifyPublishError);
  } catch (err) {
    return Promise.resolve(classifyPublishError(err));
  }
};

/**
 * A dead letter's body: the original bytes, cut to fit `maxPayload` with its
 * headers when they would not (the `Tort-Truncated` header then gives the
 * original length), so an oversized input cannot fail on every delivery.
 */
export function fitDeadLetter(data: Uint8Array, h: MsgHdrs, maxPayload: number): Uint8Array {
  const headerBytes = (h as MsgHdrs & { encode(): Uint8Array }).encode().length + HEADER_ROOM;
  const room = maxPayload - headerBytes;
  if (data.length <= room) return data;
  h.set("Tort-Truncated", String(data.length));
  return data.subarray(0, Math.max(0, room - 64));
}

export interface PublisherOptions {
  readonly subjects: OutputSubjects;
  /** How long to wait for a PubAck, ms. */
  readonly timeoutMs: number;
  /** The server's max_payload, bytes (read from the connection's INFO). */
  readonly maxPayload: () => number;
  readonly log: Logger;
}

/** A number as JSON writes it (non-finite ones as null). */
const jsonNumber = (n: number) => (Number.isFinite(n) ? String(n) : "null");
/** A number or null as JSON writes it. */
const jsonNullable = (n: number | null) => (n === null ? "null" : jsonNumber(n));
/** The last strings quoted, kept: a verdict's rulesVersion and stream change rarely. */
const quoted = () => {
  let last = "";
  let lastJson = '""';
  return (s: string) => {
    if (s !== last) {
      last = s;
      lastJson = JSON.stringify(s);
    }
    return lastJson;
  };
};
const quoteVersion = quoted();
const quoteStream = quoted();
const quoteDecidedAt = quoted();

/**
 * A verdict as JSON: the text JSON.stringify gives for a verdict made by buildVerdict (same keys,
 * same order; test/verdict/verdict-json.test.ts compares them), written field by field. A third of
 * JSON.stringify's time (0.47 vs 1.55 µs for a verdict with two hits on Node 20): the strings that
 * need quoting change rarely and their quoted form is kept.
 */
export function verdictJson(v: Verdict): string {
  let hits = "";
  for (let i = 0; i < v.hits.length; i++) {
    const h = v.hits[i]!;
    hits += `${i === 0 ? "" : ","}{"ruleId":${jsonNumber(h.ruleId)},"ownerId":${jsonNumber(h.ownerId)},"action":${JSON.stringify(h.action)},"priority":${jsonNumber(h.priority)},"matchedMs":${jsonNumber(h.matchedMs)}}`;
  }
  const source = v.source === null ? "null" : `{"stream":${quoteStream(v.source.stream)},"seq":${jsonNumber(v.source.seq)}}`;
  return (
    `{"aid":${jsonNumber(v.aid)},"cid":${jsonNumber(v.cid)},"mid":${jsonNumber(v.mid)},"action":${JSON.stringify(v.action)},"ruleId":${jsonNullable(v.ruleId)},` +
    `"hits":[${hits}],"rulesVersion":${quoteVersion(v.rulesVersion)},"source":${source},"decidedAt":${quoteDecidedAt(v.decidedAt)}}`
  );
}

/**
 * A verdict's message body: its JSON as UTF-8. Buffer.from, not TextEncoder: a verdict's few hundred
 * bytes come from Buffer's pool, in half the time of TextEncoder.encode's allocation of its own
 * (Node 20: 0.55 vs 1.08 µs).
 */
export const encodeVerdict = (verdict: Verdict): Uint8Array => Buffer.from(verdictJson(verdict), "utf8");

/** Verdicts and dead letters, published on one PubAck inbox (jetstream-publish.ts); close() when done with it. */
export function createPublisher(nc: NatsConnection, o: PublisherOptions) {
  const js = createJetStreamPublish(nc, { timeoutMs: o.timeoutMs, log: o.log });
  return {
    /** Publish the verdict for `source` to `<prefix>.<action>`. */
    publishVerdict(verdict: Verdict, source: VerdictSource): Promise<PublishOutcome> {
      const body = encodeVerdict(verdict);
      return attempt(() => js.publish(`${o.subjects.verdictSubjectPrefix}.${verdict.action}`, body, verdictMsgId(source)));
    },
    /** Publish the original bytes with the reason in headers (spec section 6). */
    publishDeadLetter(data: Uint8Array, source: VerdictSource, reason: string): Promise<PublishOutcome> {
      const h = headers();
      h.set("Tort-Error", reason.replace(/[\r\n]+/g, " ").slice(0, MAX_REASON_CHARS));
      h.set("Tort-Source-Stream", source.stream);
      h.set("Tort-Source-Seq", String(source.seq));
      const body = fitDeadLetter(data, h, o.maxPayload());
      return attempt(() => js.publish(o.subjects.deadLetterSubject, body, deadLetterMsgId(source), h));
    },
    /** Stop listening for PubAcks: call after the last settlement (what still waits fails as unknown). */
    close: () => js.close(),
  };
}

export type Publisher = ReturnType<typeof createPublisher>;
