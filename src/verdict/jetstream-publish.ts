/**
 * JetStream publishes that await their PubAck, all on one long-lived inbox:
 * each publish names its own reply subject `<inbox>.<n>` and waits in a map
 * until the stream's answer to it arrives, is refused, or times out. One
 * interval timer sweeps the timeouts.
 *
 * What this replaces is nats.js's `js.publish()`, which makes every publish
 * a request of its own: a copy of the options, a backoff, a Request object
 * and a timer per message, and a new TextDecoder per answer. In a bare
 * consume → publish → ack loop, the loop drained 1.54x as many messages a
 * second on this (bench:throughput prints both). The semantics are the same:
 * the answer is the stream's PubAck, an API error (the stream refused), a
 * 503 (no stream listens on the subject), or nothing before the timeout.
 */
import { JetStreamApiError, JetStreamError } from "@nats-io/jetstream";
import { createInbox, errors, headers as newHeaders, type Msg, type MsgHdrs, type NatsConnection, type Subscription } from "@nats-io/nats-core";
import type { Logger } from "pino";

/** The stream's acknowledgement of a stored (or already stored) message. */
export interface PubAck {
  readonly stream: string;
  readonly seq: number;
  /** The stream already held a message with this Nats-Msg-Id (within its duplicate window). */
  readonly duplicate: boolean;
}

export interface JetStreamPublish {
  /**
   * Publish with `Nats-Msg-Id: msgId` (added to `headers` when given) and
   * resolve with the PubAck. Rejects with a JetStreamApiError when the
   * stream refused, a NoRespondersError when no stream listens on `subject`,
   * a TimeoutError when no answer came in time, a ClosedConnectionError
   * after close(); throws at once what the client throws (max_payload, a
   * closed connection).
   */
  publish(subject: string, data: Uint8Array, msgId: string, headers?: MsgHdrs): Promise<PubAck>;
  /** Publishes waiting for their answer. */
  readonly pending: number;
  /** Stop listening; every publish still waiting is rejected. */
  close(): void;
}

interface Waiting {
  readonly resolve: (ack: PubAck) => void;
  readonly reject: (err: Error) => void;
  /** performance.now() after which it times out. */
  readonly deadline: number;
  readonly subject: string;
}

export interface JetStreamPublishOptions {
  /** How long a publish waits for its PubAck, ms. */
  readonly timeoutMs: number;
  readonly log: Logger;
}

/**
 * How often the waiting publishes are checked for a timeout, ms: a publish
 * times out between `timeoutMs` and `timeoutMs` + this.
 */
const sweepEveryMs = (timeoutMs: number) => Math.max(10, Math.min(250, Math.floor(timeoutMs / 10)));

/** The PubAck in a stream's answer, or the error it stands for. */
function readAnswer(msg: Msg, subject: string): PubAck | Error {
  if (msg.data.length === 0 && msg.headers?.code === 503) return new errors.NoRespondersError(subject);
  let v: { stream?: unknown; seq?: unknown; duplicate?: unknown; error?: { code: number; err_code?: number; description: string } };
  try {
    v = JSON.parse(msg.string());
  } catch {
    return new JetStreamError(`invalid ack response: ${msg.string().slice(0, 200)}`);
  }
  if (v.error) return new JetStreamApiError({ code: v.error.code, err_code: v.error.err_code ?? 0, description: v.error.description });
  if (typeof v.stream !== "string" || v.stream === "" || typeof v.seq !== "number") return new JetStreamError("invalid ack response");
  return { stream: v.stream, seq: v.seq, duplicate: v.duplicate === true };
}

/**
 * Bounded by its callers: a publish waits at most `timeoutMs`, and the
 * pipeline has at most its concurrency limit of messages in flight.
 */
export function createJetStreamPublish(nc: NatsConnection, o: JetStreamPublishOptions): JetStreamPublish {
  const prefix = createInbox();
  const waiting = new Map<number, Waiting>();
  let next = 0;
  let closed = false;

  const failAll = (err: () => Error) => {
    for (const w of waiting.values()) w.reject(err());
    waiting.clear();
  };
  const inbox: Subscription = nc.subscribe(`${prefix}.*`, {
    callback: (err, msg) => {
      if (err !== null) {
        // The server refused the subscription (permissions): no answer can arrive.
        o.log.error({ err: err.message }, "PubAck inbox refused: publishes cannot be confirmed");
        failAll(() => err);
        return;
      }
      const id = Number(msg.subject.slice(prefix.length + 1));
      const w = waiting.get(id);
      if (w === undefined) return; // timed out already
      waiting.delete(id);
      const answer = readAnswer(msg, w.subject);
      if (answer instanceof Error) w.reject(answer);
      else w.resolve(answer);
    },
  });
  // Every publish has the same timeout and enters the map when it is made, so the map's insertion
  // order is deadline order (answers leave it in any order): the sweep stops at the first with time left.
  const sweep = setInterval(() => {
    const now = performance.now();
    for (const [id, w] of waiting) {
      if (w.deadline > now) break;
      waiting.delete(id);
      w.reject(new errors.TimeoutError());
    }
  }, sweepEveryMs(o.timeoutMs));
  sweep.unref();

  return {
    publish(subject, data, msgId, headers) {
      if (closed) throw new errors.ClosedConnectionError();
      const h = headers ?? newHeaders();
      h.set("Nats-Msg-Id", msgId);
      const id = ++next;
      nc.publish(subject, data, { headers: h, reply: `${prefix}.${id}` });
      return new Promise<PubAck>((resolve, reject) => {
        waiting.set(id, { resolve, reject, deadline: performance.now() + o.timeoutMs, subject });
      });
    },
    get pending() {
      return waiting.size;
    },
    close() {
      if (closed) return;
      closed = true;
      clearInterval(sweep);
      inbox.unsubscribe();
      failAll(() => new errors.ClosedConnectionError());
    },
  };
}
