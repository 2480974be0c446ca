/**
 * Is there a verdict for this input already? Asked only of late redeliveries:
 * inputs stored longer ago than the verdict stream's duplicate window, where
 * the Nats-Msg-Id dedupe can no longer be trusted (an outage outlasted the
 * window while the input was unacked, say). The answer comes from the verdict
 * stream itself: its messages' headers (`headers_only`, no bodies) read with
 * an ordered consumer from the input's own storage time (a verdict is never
 * older than its input) up to the stream's end, looking for the input's
 * Nats-Msg-Id.
 *
 * Late redeliveries come in bursts (after an outage), so asks are batched:
 * one scan at a time answers every ask waiting when it starts, from the
 * earliest of their times. A scan reads at most `maxScan` messages; past
 * that the answer is "unknown" (the caller then publishes: the Msg-Id still
 * protects anything inside the window).
 */
import { DeliverPolicy, type JetStreamClient } from "@nats-io/jetstream";
import type { Logger } from "pino";
import type { VerdictSource } from "../match/types.js";
import { verdictMsgId } from "./publish.js";

export type LookupAnswer = "found" | "absent" | "unknown";

export interface VerdictLookup {
  /** Whether the verdict stream holds a verdict for `source`, an input stored at `storedAtMs`. */
  find(source: VerdictSource, storedAtMs: number): Promise<LookupAnswer>;
}

interface Ask {
  readonly msgId: string;
  readonly storedAtMs: number;
  readonly resolve: (answer: LookupAnswer) => void;
}

export interface VerdictLookupOptions {
  readonly verdictStream: string;
  /** Most verdict headers one scan reads. */
  readonly maxScan: number;
  readonly log: Logger;
}

/** Verdict headers read per pull of a scan. */
const SCAN_BATCH = 1_000;

export function createVerdictLookup(js: JetStreamClient, o: VerdictLookupOptions): VerdictLookup {
  let waiting: Ask[] = [];
  let scanning = false;

  const scan = async (asks: Ask[]): Promise<void> => {
    const wanted = new Map<string, Ask[]>();
    for (const a of asks) wanted.set(a.msgId, [...(wanted.get(a.msgId) ?? []), a]);
    const from = Math.min(...asks.map((a) => a.storedAtMs)) - 1_000;
    let read = 0;
    let answer: LookupAnswer = "absent";
    try {
      const consumer = await js.consumers.get(o.verdictStream, {
        deliver_policy: DeliverPolicy.StartTime,
        opt_start_time: new Date(from).toISOString(),
        headers_only: true,
      });
      scanning: while (wanted.size > 0) {
        if (read >= o.maxScan) {
          answer = "unknown";
          break;
        }
        let last = 1;
        let got = 0;
        for await (const m of await consumer.fetch({ max_messages: SCAN_BATCH, expires: 2_000 })) {
          got++;
          read++;
          last = m.info.pending;
          const msgId = m.headers?.get("Nats-Msg-Id") ?? "";
          const hits = wanted.get(msgId);
          if (hits !== undefined) {
            for (const hit of hits) hit.resolve("found");
            wanted.delete(msgId);
          }
        }
        if (got === 0 || last === 0) break scanning; // the end of the stream as it was
      }
    } catch (err) {
      o.log.warn({ err: (err as Error).message, stream: o.verdictStream }, "verdict lookup failed");
      answer = "unknown";
    }
    const unanswered = [...wanted.values()].flat();
    o.log.info({ asked: asks.length, found: asks.length - unanswered.length, read, answer }, "verdict lookup for late redeliveries");
    for (const ask of unanswered) ask.resolve(answer);
  };

  const next = () => {
    if (scanning || waiting.length === 0) return;
    scanning = true;
    const asks = waiting;
    waiting = [];
    void scan(asks).finally(() => {
      scanning = false;
      next();
    });
  };

  return {
    find(source, storedAtMs) {
      return new Promise((resolve) => {
        waiting.push({ msgId: verdictMsgId(source), storedAtMs, resolve });
        next();
      });
    },
  };
}
