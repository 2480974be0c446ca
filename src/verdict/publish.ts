/**
 * Verdicts and dead letters leave through JetStream, each awaited until its
 * PubAck, each with a message id derived from the input's stream sequence so
 * a redelivered input can never yield a second verdict or dead letter.
 */
import type { JetStreamClient } from "@nats-io/jetstream";
import { headers } from "@nats-io/transport-node";
import type { Verdict, VerdictSource } from "../match/types.js";

export interface OutputSubjects {
  readonly verdictSubjectPrefix: string;
  readonly deadLetterSubject: string;
}

/** Nats-Msg-Id of the verdict for an input (spec section 5). */
export const verdictMsgId = (source: VerdictSource) => `${source.stream}:${source.seq}`;

export function createPublisher(js: JetStreamClient, subjects: OutputSubjects, timeoutMs: number) {
  const encoder = new TextEncoder();
  return {
    /** Publish the verdict for `source` to `<prefix>.<action>`; resolves once the stream stored it (or knew it already). */
    async publishVerdict(verdict: Verdict, source: VerdictSource): Promise<{ duplicate: boolean }> {
      const ack = await js.publish(`${subjects.verdictSubjectPrefix}.${verdict.action}`, encoder.encode(JSON.stringify(verdict)), {
        msgID: verdictMsgId(source),
        timeout: timeoutMs,
      });
      return { duplicate: ack.duplicate };
    },
    /** Publish the original bytes with the reason in headers (spec section 6). */
    async publishDeadLetter(data: Uint8Array, source: VerdictSource, reason: string): Promise<void> {
      const h = headers();
      h.set("Tort-Error", reason.replace(/[\r\n]+/g, " "));
      h.set("Tort-Source-Stream", source.stream);
      h.set("Tort-Source-Seq", String(source.seq));
      await js.publish(subjects.deadLetterSubject, data, { msgID: `deadletter:${verdictMsgId(source)}`, headers: h, timeout: timeoutMs });
    },
  };
}

export type Publisher = ReturnType<typeof createPublisher>;
