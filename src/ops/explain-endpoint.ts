/**
 * The running instance's `tort.explain` answers (spec section 10), bounded and fair: anyone on the
 * NATS can ask, so one request at a time is explained, in slices of at most EXPLAIN_SLICE_MS of
 * the event loop (the pipeline settles messages between them), at most EXPLAIN_MAX_WAITING wait
 * behind it (the rest are told to try again), and a reply larger than EXPLAIN_MAX_REPLY_BYTES (or
 * the server's max_payload) is an error that says so.
 */
import { decodeResult } from "../ingest/decode-result.js";
import { explainResultInSlices, ExplainTooLargeError } from "../match/explain.js";
import { matchResult } from "../match/match-result.js";
import type { RuleSnapshot } from "../match/snapshot.js";

/** Longest stretch of the event loop one explanation takes before it lets the rest run, ms. */
export const EXPLAIN_SLICE_MS = 2;
/** Requests waiting behind the one being explained, at most. */
export const EXPLAIN_MAX_WAITING = 16;
/** Largest reply, bytes (a result naming thousands of rules explains in about 100 bytes a rule). */
export const EXPLAIN_MAX_REPLY_BYTES = 512 * 1024;

const turn = () => new Promise((resolve) => setImmediate(resolve));

/** What a request is answered with: the explanation with the snapshot in service, or why there is none. */
export async function explainRequest(snapshot: RuleSnapshot | null, data: Uint8Array, maxReplyBytes = EXPLAIN_MAX_REPLY_BYTES): Promise<string> {
  const checked = decodeResult(data);
  if (!checked.ok) return JSON.stringify({ error: `not a valid recognition result: ${checked.reason}` });
  if (snapshot === null) return JSON.stringify({ error: "no rule snapshot loaded yet" });
  try {
    // Decoding, matching, explaining and writing the reply each let the rest of the process run before them.
    await turn();
    const decision = matchResult(snapshot, checked.value);
    await turn();
    const rules = await explainResultInSlices(snapshot, checked.value, { sliceMs: EXPLAIN_SLICE_MS });
    await turn();
    const reply = JSON.stringify({ rulesVersion: snapshot.version, action: decision.action, ruleId: decision.ruleId, rules });
    const bytes = Buffer.byteLength(reply);
    if (bytes <= maxReplyBytes) return reply;
    return JSON.stringify({ error: `the explanation names ${rules.length} rules, ${bytes} bytes: more than the ${maxReplyBytes} a reply may carry; explain fewer assets at a time` });
  } catch (err) {
    if (err instanceof ExplainTooLargeError) return JSON.stringify({ error: err.message });
    throw err;
  }
}

/** One explanation at a time, the next ones waiting (bounded). */
export function createExplainQueue(options: { snapshot: () => RuleSnapshot | null; maxReplyBytes: () => number }) {
  const waiting: { data: Uint8Array; respond: (reply: string) => void }[] = [];
  let busy = false;
  let stopped = false;
  const next = async () => {
    busy = true;
    while (!stopped && waiting.length > 0) {
      const { data, respond } = waiting.shift()!;
      await turn();
      // The snapshot in service when the request's turn comes (a new one may have come meanwhile).
      respond(await explainRequest(options.snapshot(), data, Math.min(EXPLAIN_MAX_REPLY_BYTES, options.maxReplyBytes())).catch((err: unknown) => JSON.stringify({ error: `explain failed: ${(err as Error).message}` })));
    }
    busy = false;
  };
  return {
    /** Queue a request; `respond` is called once with the reply's text. */
    ask(data: Uint8Array, respond: (reply: string) => void): void {
      if (stopped) return respond(JSON.stringify({ error: "this instance is stopping" }));
      if (waiting.length >= EXPLAIN_MAX_WAITING) return respond(JSON.stringify({ error: `busy: ${EXPLAIN_MAX_WAITING} explain requests are waiting on this instance; try again` }));
      waiting.push({ data, respond });
      if (!busy) void next();
    },
    stop(): void {
      stopped = true;
      for (const w of waiting.splice(0)) w.respond(JSON.stringify({ error: "this instance is stopping" }));
    },
  };
}
