/**
 * The exhausted-deliveries worker. When an input runs out of deliveries
 * unsettled (an instance crashed or stalled with it every time, or its final
 * deliveries could not publish), the server publishes a max-deliveries
 * advisory, which the stream TORT_EXHAUSTED keeps even when no instance runs.
 * Every instance works that stream's durable consumer: it reads the input
 * back by sequence and settles it for good with the same decision as the
 * pipeline's final delivery — an invalid input becomes a dead letter; a valid
 * one gets its verdict (the Msg-Id makes that safe if one exists already), or
 * a dead letter when the verdict stream refuses it — then acks the advisory.
 * What it cannot settle yet (no snapshot, NATS trouble) it retries with the
 * advisory's own redeliveries, bounded by `maxDeliver` (EXHAUSTED_MAX_DELIVER, 20, on
 * that consumer): on the last one it gives the input up, never silently — an error
 * log naming the input's stream sequence (it stays in the input stream for an
 * operator) and `onGaveUp` (the metric `tortmatch_exhausted_given_up_total`, alert
 * `TortmatchInputsGivenUp`).
 */
import { type Consumer, type JetStreamManager, type JsMsg } from "@nats-io/jetstream";
import type { Logger } from "pino";
import { decodeResult } from "../ingest/decode-result.js";
import type { RuleSnapshot } from "../match/snapshot.js";
import { decideAndSettle } from "./decide-and-settle.js";
import type { Settled, SettleOptions } from "./settle-message.js";

export interface ExhaustedWorkerOptions {
  /** The durable consumer of the advisory stream. */
  readonly consumer: Consumer;
  readonly jsm: JetStreamManager;
  readonly inputStream: string;
  readonly snapshot: () => RuleSnapshot | null;
  readonly settle: SettleOptions;
  /** Redelivery delay of an advisory that could not be settled yet. */
  readonly retryDelayMs: number;
  readonly now: () => Date;
  readonly log: Logger;
  readonly onSettled?: (settled: Settled) => void;
  /** The advisory consumer's max_deliver: on that delivery, an input that still cannot be settled is given up. */
  readonly maxDeliver: number;
  /** Told of each input given up (after its advisory's last delivery). */
  readonly onGaveUp?: (source: { stream: string; seq: number }, reason: string) => void;
}

export interface ExhaustedWorker {
  stop(): Promise<void>;
}

/** What the server says in a max-deliveries advisory (io.nats.jetstream.advisory.v1.max_deliver). */
interface MaxDeliveriesAdvisory {
  readonly stream_seq: number;
  readonly deliveries: number;
}

/** One advisory: the input it names, read back and settled for good, or retried, or given up loudly. */
async function settleAdvisory(o: ExhaustedWorkerOptions, advisory: JsMsg): Promise<void> {
  let body: MaxDeliveriesAdvisory;
  try {
    body = advisory.json<MaxDeliveriesAdvisory>();
    if (!Number.isSafeInteger(body.stream_seq)) throw new Error("no stream_seq");
  } catch (err) {
    o.log.warn({ err: (err as Error).message }, "not a max-deliveries advisory; dropped");
    advisory.term();
    return;
  }
  const source = { stream: o.inputStream, seq: body.stream_seq };
  // Not settled yet: try again later, or, on the advisory's last delivery, give the input up loudly.
  const retry = (reason: string) => {
    if (advisory.info.deliveryCount < o.maxDeliver) {
      advisory.nak(o.retryDelayMs);
      return;
    }
    o.log.error(
      { ...source, deliveries: advisory.info.deliveryCount, reason },
      "an input whose deliveries ran out could not be settled: given up (it stays in the input stream at this sequence; publish it again to have it matched)",
    );
    o.onGaveUp?.(source, reason);
    advisory.term();
  };
  let data: Uint8Array;
  let storedAtMs: number;
  try {
    const stored = await o.jsm.streams.getMessage(o.inputStream, { seq: body.stream_seq });
    if (stored === null) {
      o.log.warn(source, "an input whose deliveries ran out is gone from its stream; nothing to settle");
      advisory.ack();
      return;
    }
    data = stored.data;
    storedAtMs = stored.time.getTime();
  } catch (err) {
    o.log.warn({ ...source, err: (err as Error).message }, "reading back an input whose deliveries ran out failed; will retry");
    retry(`reading it back failed: ${(err as Error).message}`);
    return;
  }
  const checked = decodeResult(data);
  const snapshot = o.snapshot();
  if (checked.ok && snapshot === null) {
    retry("no rule snapshot to match it with"); // a valid input needs a snapshot for its verdict
    return;
  }
  const settled = await decideAndSettle(
    {
      data,
      source,
      // Settled as on the final delivery (and a redelivery): a dead letter only when nothing can have stored a verdict.
      delivery: Math.max(2, o.settle.finalDelivery),
      storedAtMs,
      ack: () => advisory.ack(),
      term: () => advisory.ack(),
      nak: () => retry("its verdict or dead letter could not be published"),
      working: () => advisory.working(),
    },
    checked,
    snapshot!,
    o.now().toISOString(),
    o.settle,
  );
  if (settled.outcome !== "stuck") o.log.warn({ ...source, deliveries: body.deliveries, outcome: settled.outcome }, "settled an input whose deliveries ran out");
  o.onSettled?.(settled);
}

export function startExhaustedWorker(o: ExhaustedWorkerOptions): ExhaustedWorker {
  const stopping = new AbortController();
  const done = (async () => {
    while (!stopping.signal.aborted) {
      try {
        const batch = await o.consumer.fetch({ max_messages: 16, expires: 5_000 });
        const stop = () => batch.stop();
        stopping.signal.addEventListener("abort", stop, { once: true });
        try {
          for await (const advisory of batch) await settleAdvisory(o, advisory);
        } finally {
          stopping.signal.removeEventListener("abort", stop);
        }
      } catch (err) {
        if (stopping.signal.aborted) break;
        o.log.warn({ err: (err as Error).message }, "exhausted-deliveries pull failed; retrying");
        await new Promise((r) => setTimeout(r, 1_000));
      }
    }
  })();

  return {
    async stop() {
      stopping.abort();
      await done;
    },
  };
}
