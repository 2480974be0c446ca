/**
 * JetStream → Observable, pulled on credit. The loop takes credits from the
 * concurrency limit before each pull request and asks for exactly that many
 * messages, so the Observable never emits more than the limit allows and no
 * operator downstream has to buffer: what is not pulled stays in JetStream.
 *
 * One long-lived inbox subscription receives every pull request's messages;
 * each request names its own reply subject (`<inbox>.<batch>`), so the
 * server's status for a request (408 expired with N undelivered, 409
 * rejected) says whose credits come back. Messages themselves are fungible:
 * each one delivered spends one credit asked for. nats.js's `fetch()` opens a
 * subscription, a heartbeat monitor and an iterator per request (~9 µs a
 * message at 30 a request here), and its `consume()` pulls again as messages
 * arrive, not as they are settled, so it cannot keep the credit bound.
 */
import type { JsMsg } from "@nats-io/jetstream";
import { createInbox, type Msg, type NatsConnection, type Subscription } from "@nats-io/nats-core";
import { Observable, type Subscriber } from "rxjs";
import type { Logger } from "pino";
import type { ByteBudget } from "../gate/byte-budget.js";
import type { ConcurrencyLimit } from "../gate/concurrency-limit.js";
import { MAX_RESULT_BYTES } from "./decode-result.js";
import { jsMessage } from "./js-message.js";

/**
 * Bytes reserved for each message a pull request asks for: the largest
 * accepted result with its subject and headers. A request is bounded by
 * messages, not bytes (a byte bound would let the server stop a request on
 * one large message), so it reserves the worst case per message, and each
 * message that arrives gives back what it did not use.
 */
export const MESSAGE_RESERVE_BYTES = MAX_RESULT_BYTES + 64 * 1024;

/**
 * The reserve per message asked for on a connection: the largest message the server accepts
 * (`max_payload`, headers included) and room for its subject, at least MESSAGE_RESERVE_BYTES. A server
 * whose max_payload is 8 MiB can deliver 8 MiB messages (decoding then refuses them): the budget must
 * hold for those too, not only for valid results.
 */
export const messageReserve = (nc: Pick<NatsConnection, "info">) => Math.max(MESSAGE_RESERVE_BYTES, (nc.info?.max_payload ?? 0) + 64 * 1024);

/** A pulled message and the bytes of the budget it holds until settled. */
export interface PulledMessage {
  readonly msg: JsMsg;
  readonly bytes: number;
}

/** The durable consumer to pull from. */
export interface PullSource {
  readonly nc: NatsConnection;
  readonly stream: string;
  readonly consumer: string;
}

/**
 * A message's bytes as held in the process, about: body, subject, reply subject and
 * up to 512 bytes of headers (counted, not decoded: decoding them per message costs more).
 */
const sizeOf = (msg: Msg) => msg.data.length + msg.subject.length + 640;

export interface PullOptions {
  /** Most messages one pull request asks for. */
  readonly maxBatch: number;
  /** How long one pull request waits on the server for messages (>= 1000 ms). */
  readonly expiresMs: number;
  /** Pause after a failed pull request (no responders, reconnecting, consumer missing). */
  readonly retryDelayMs: number;
  /**
   * Graceful stop: no new pull request; open ones run to their end (full or
   * expired), then the Observable completes. Cancelling an open request would
   * strand what the server is already sending (redelivered only after ack wait).
   */
  readonly drainSignal?: AbortSignal;
}

/** Statuses that refuse a request before it delivers anything: all its credits come back. */
const refusedUpFront = (code: number, description: string) =>
  code === 400 || code === 404 || (code === 409 && description.toLowerCase().startsWith("exceeded max"));

const pause = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });

/** How long a draining pull waits for messages already on their way before it voids its open requests, ms. */
export const DRAIN_GRACE_MS = 250;

/**
 * Messages of a durable consumer. Each emitted message holds one credit of
 * `limit` and `bytes` of `budget`: whoever settles it must release both.
 * Unsubscribing stops at once; `drainSignal` stops gracefully. Messages
 * already delivered keep their credits until settled.
 *
 * Open requests are void, and their credits come back, when the connection
 * is re-established, when the server says the consumer went away (409) or
 * had no responder (503), and when nothing — no message, no status, no idle
 * heartbeat — was heard for two heartbeats while requests were open (a
 * missing consumer answers nothing). The inbox is then replaced, so a late
 * delivery to a void request never reaches the process (the server
 * redelivers it after the ack wait).
 */
export function pullMessages(source: PullSource, limit: ConcurrencyLimit, budget: ByteBudget, options: PullOptions, log: Logger): Observable<PulledMessage> {
  return new Observable<PulledMessage>((subscriber) => {
    const pull = new CreditPull(source, limit, budget, options, log, subscriber);
    pull.start();
    return () => pull.stop();
  });
}

/**
 * One subscription's pull: its inbox, the requests it has open (their credits and reserves), the
 * watchdog, the connection-status listener and the request loop. Owns all of them and releases
 * them in `stop()`.
 */
class CreditPull {
  private readonly nc: NatsConnection;
  private readonly nextSubject: string;
  private readonly heartbeatMs: number;
  private readonly stopped = new AbortController();
  /** Either signal ends the loop; only stopping (unsubscribing) voids open requests. */
  private readonly noMorePulls: AbortSignal;
  /** Messages asked for and neither delivered nor reported undelivered: the credits (and reserves) open requests hold. */
  private outstanding = 0;
  private loopEnded = false;
  /** Set when a request failed: the loop pauses before the next one. */
  private failed = false;
  private disconnected = false;
  private lastHeard = performance.now();
  private prefix = "";
  private inbox: Subscription | null = null;
  private warnedSmallBudget = false;
  private reserve: number;
  private drainTimer: NodeJS.Timeout | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  private statuses: AsyncIterable<{ type: string }> | undefined;

  constructor(
    private readonly source: PullSource,
    private readonly limit: ConcurrencyLimit,
    private readonly budget: ByteBudget,
    private readonly options: PullOptions,
    private readonly log: Logger,
    private readonly subscriber: Subscriber<PulledMessage>,
  ) {
    this.nc = source.nc;
    this.nextSubject = `$JS.API.CONSUMER.MSG.NEXT.${source.stream}.${source.consumer}`;
    this.heartbeatMs = Math.max(500, Math.min(5_000, Math.floor(options.expiresMs / 2)));
    this.noMorePulls = options.drainSignal ? AbortSignal.any([this.stopped.signal, options.drainSignal]) : this.stopped.signal;
    this.reserve = this.reserveNow();
  }

  start(): void {
    this.openInbox();
    this.options.drainSignal?.addEventListener("abort", () => this.onDrain(), { once: true });
    this.watchdog = setInterval(() => this.checkHeard(), this.heartbeatMs);
    this.followConnection();
    void this.requestLoop();
  }

  stop(): void {
    this.stopped.abort(new Error("pull stopped"));
    clearInterval(this.watchdog);
    clearTimeout(this.drainTimer);
    (this.statuses as { stop?: () => void } | undefined)?.stop?.();
    this.inbox?.unsubscribe();
    this.giveBack(this.outstanding);
  }

  /**
   * This connection's reserve per message, read again whenever no request is open (after a reset).
   * Never more than the whole budget (one message at a time then): a budget smaller than the
   * largest message the server accepts is said once.
   */
  private reserveNow(): number {
    const wanted = messageReserve(this.nc);
    if (wanted > this.budget.maxBytes && !this.warnedSmallBudget) {
      this.warnedSmallBudget = true;
      this.log.warn({ maxPayload: this.nc.info?.max_payload, maxInflightBytes: this.budget.maxBytes }, "TORT_MAX_INFLIGHT_BYTES is smaller than the largest message the server accepts: one message at a time, and such a message is held beyond the budget");
    }
    return Math.min(wanted, this.budget.maxBytes);
  }

  private giveBack(messages: number): void {
    const n = Math.min(messages, this.outstanding);
    if (n <= 0) return;
    this.outstanding -= n;
    this.limit.release(n);
    this.budget.release(n * this.reserve);
  }

  private maybeComplete(): void {
    if (this.loopEnded && this.outstanding === 0 && !this.subscriber.closed) this.subscriber.complete();
  }

  private readonly onMessage = (err: Error | null, msg: Msg): void => {
    if (err !== null) {
      // The server refused the subscription (permissions): nothing can be pulled.
      this.subscriber.error(new Error(`pull inbox refused: ${err.message}`));
      return;
    }
    this.lastHeard = performance.now();
    if (msg.subject.startsWith(this.prefix)) {
      this.onStatus(msg);
      return;
    }
    if (this.outstanding === 0) {
      // Not asked for (it cannot be, with a fresh inbox per reset): back to the stream at once, the bound holds.
      this.log.warn({ subject: msg.subject }, "a message arrived that no open pull request asked for; nak'd");
      jsMessage(msg).nak();
      return;
    }
    this.outstanding--;
    // The message keeps what it holds of its reserve, and gives back the rest.
    const charge = Math.min(sizeOf(msg), this.reserve);
    this.budget.release(this.reserve - charge);
    this.subscriber.next({ msg: jsMessage(msg), bytes: charge });
    this.maybeComplete();
  };

  private onStatus(msg: Msg): void {
    const code = msg.headers?.code ?? 0;
    const description = msg.headers?.description ?? "";
    if (code === 100) return; // idle heartbeat: the request is alive
    if (code === 408) {
      // Expired: the server says how many it did not deliver.
      const left = Number(msg.headers?.get("Nats-Pending-Messages"));
      if (Number.isInteger(left) && left >= 0) this.giveBack(left);
      else this.reset(`a request expired without saying what it left (${description})`);
    } else if (refusedUpFront(code, description)) {
      this.failed = true;
      this.log.warn({ code, description }, "pull request refused; retrying");
      this.giveBack(Number(msg.subject.slice(this.prefix.length + 1)) || 0);
    } else {
      // 409 Consumer Deleted or Leadership Change, 503 no responders, ...: every open request is void.
      this.failed = true;
      this.reset(`${code} ${description}`.trim());
    }
    this.maybeComplete();
  }

  private openInbox(): void {
    this.prefix = createInbox();
    this.inbox = this.nc.subscribe(`${this.prefix}.*`, { callback: this.onMessage });
  }

  /** Void every open request: a new inbox, their credits back. */
  private reset(why: string): void {
    if (this.outstanding > 0) this.log.warn({ why, open: this.outstanding }, "open pull requests void; asking again");
    this.inbox?.unsubscribe();
    this.giveBack(this.outstanding);
    this.reserve = this.reserveNow(); // nothing is open: a server reached anew may accept larger messages
    if (!this.stopped.signal.aborted) this.openInbox();
  }

  /**
   * Draining: the requests still open may run to their expiry (up to expiresMs) with nothing to
   * deliver. After a short grace for messages already on their way, they are voided: an idle
   * instance stops at once. A message the server sends to a voided request is redelivered after
   * the ack wait (nothing is lost; its verdict is deduplicated by Nats-Msg-Id).
   */
  private onDrain(): void {
    this.drainTimer = setTimeout(() => {
      if (this.outstanding === 0 || this.stopped.signal.aborted) return;
      this.inbox?.unsubscribe();
      this.inbox = null;
      this.giveBack(this.outstanding);
      this.maybeComplete();
    }, DRAIN_GRACE_MS);
  }

  /** Two heartbeats of silence while requests are open: the consumer may be gone; void them. */
  private checkHeard(): void {
    if (this.outstanding > 0 && !this.disconnected && performance.now() - this.lastHeard > 2 * this.heartbeatMs) {
      this.failed = true;
      this.reset(`nothing heard for ${Math.round(performance.now() - this.lastHeard)} ms (is consumer ${this.source.consumer} there?)`);
      this.lastHeard = performance.now();
      this.maybeComplete();
    }
  }

  /** A reconnected server may have forgotten the open requests: void them. */
  private followConnection(): void {
    const statuses = this.nc.status();
    this.statuses = statuses;
    void (async () => {
      for await (const s of statuses) {
        if (s.type === "disconnect") this.disconnected = true;
        if (s.type === "reconnect") {
          this.disconnected = false;
          this.lastHeard = performance.now();
          this.reset("reconnected: the server may have forgotten them");
          this.maybeComplete();
        }
      }
    })();
  }

  /** Credits, then bytes, then one request for as many messages as both allow; until stopped or drained. */
  private async requestLoop(): Promise<void> {
    const { limit, budget, options } = this;
    while (!this.noMorePulls.aborted) {
      if (this.failed) {
        this.failed = false;
        await pause(options.retryDelayMs, this.noMorePulls);
        continue;
      }
      let credits: number;
      try {
        credits = await limit.acquire(options.maxBatch, this.noMorePulls);
      } catch {
        break; // stopping
      }
      let bytes: number;
      try {
        bytes = await budget.acquire(this.reserve, credits * this.reserve, this.noMorePulls);
      } catch {
        limit.release(credits);
        break; // stopping
      }
      // As many messages as the bytes reserve allows; the rest goes back.
      const asked = Math.min(credits, Math.floor(bytes / this.reserve));
      limit.release(credits - asked);
      budget.release(bytes - asked * this.reserve);
      this.request(asked);
    }
    this.loopEnded = true;
    this.maybeComplete();
  }

  private request(asked: number): void {
    try {
      if (this.outstanding === 0) this.lastHeard = performance.now(); // the watchdog times this request from now
      this.nc.publish(this.nextSubject, JSON.stringify({ batch: asked, expires: this.options.expiresMs * 1e6, idle_heartbeat: this.heartbeatMs * 1e6 }), { reply: `${this.prefix}.${asked}` });
      this.outstanding += asked;
    } catch (err) {
      this.limit.release(asked);
      this.budget.release(asked * this.reserve);
      this.log.warn({ err: (err as Error).message }, "pull request failed; retrying");
      this.failed = true;
    }
  }
}
