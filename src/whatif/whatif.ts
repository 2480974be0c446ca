/**
 * What would candidate rules do to the results already seen? The inputs
 * retained in the input stream are read with an ordered consumer (the durable
 * is never touched), matched against a candidate snapshot, and compared with
 * the verdict recorded for each in the verdict stream (spec section 10).
 *
 * Memory is bounded by the input stream's retained range, not by what either
 * stream holds in bytes: the recorded verdicts are indexed by input sequence in
 * typed arrays (an action code and the winning rule id: 9 bytes per input compared), and
 * `--out` marks changed inputs in a bitset, then writes them in a second pass
 * over the verdict stream, reading each changed input back by sequence.
 */
import { DeliverPolicy, type JetStreamClient, type JetStreamManager, type JsMsg } from "@nats-io/jetstream";
import { decodeResult } from "../ingest/decode-result.js";
import { buildVerdict, matchResult } from "../match/match-result.js";
import type { RuleSnapshot } from "../match/snapshot.js";
import { VERDICT_ACTIONS, type VerdictAction } from "../match/types.js";

export interface WhatIfOptions {
  readonly jsm: JetStreamManager;
  readonly js: JetStreamClient;
  readonly inputStream: string;
  readonly verdictStream: string;
  readonly candidate: RuleSnapshot;
  /**
   * The rules live now: each input's candidate verdict is compared with theirs (both computed here)
   * instead of with the verdict recorded for it, so edits already live are not credited to the candidate.
   */
  readonly baseline?: RuleSnapshot;
  /** Start at this input sequence, or at the first input stored at or after this instant (epoch ms); default: all retained. */
  readonly fromSeq?: number;
  readonly sinceMs?: number;
  /** Receives one NDJSON line per changed input, when given. */
  readonly out?: (line: string) => Promise<void> | void;
  /** Told how many inputs have been read, of how many. */
  readonly onProgress?: (read: number, total: number) => void;
  readonly now?: () => Date;
  /** Changed inputs kept as samples per transition. */
  readonly samplesPerTransition?: number;
}

export interface WhatIfSample {
  readonly seq: number;
  readonly before: { action: VerdictAction; ruleId: number | null };
  readonly after: { action: VerdictAction; ruleId: number | null };
}

export interface WhatIfSummary {
  readonly inputs: number;
  readonly compared: number;
  readonly changed: number;
  readonly unchanged: number;
  readonly invalid: number;
  readonly noVerdict: number;
  readonly transitions: Record<string, number>;
}

export interface WhatIfReport {
  readonly summary: WhatIfSummary;
  /** Hits per rule before and after, over the compared inputs: the largest changes first. */
  readonly ruleChanges: { ruleId: number; before: number; after: number }[];
  readonly samples: WhatIfSample[];
  readonly candidateVersion: string;
  /** What the candidate was compared with: the recorded verdicts, or the live rules of this version. */
  readonly baseline: { readonly kind: "recorded" } | { readonly kind: "live"; readonly version: string };
}

/** Action codes in the index: 0 = no verdict recorded. */
const CODE = new Map<string, number>(VERDICT_ACTIONS.map((a, i) => [a, i + 1]));
const ACTION_OF = [undefined, ...VERDICT_ACTIONS] as (VerdictAction | undefined)[];
/** Messages per pull of the ordered readers. */
const READ_BATCH = 1_000;

/** A message read, with its stream sequence. */
interface Read {
  readonly msg: JsMsg;
  readonly seq: number;
}

/**
 * Every message of `stream` from `fromSeq` (or `sinceMs`) to `lastSeq`, in
 * order, with its sequence. (`msg.info` costs nothing more here: an ordered
 * consumer has parsed it already, to check each delivery's sequence.)
 */
async function* readStream(js: JetStreamClient, stream: string, lastSeq: number, from: { seq?: number; sinceMs?: number }): AsyncGenerator<Read> {
  const opts =
    from.sinceMs !== undefined
      ? { deliver_policy: DeliverPolicy.StartTime, opt_start_time: new Date(from.sinceMs).toISOString() }
      : { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: from.seq ?? 1 };
  const consumer = await js.consumers.get(stream, opts);
  // consume() keeps pulls in flight while messages are handled (fetch would wait for each batch).
  const messages = await consumer.consume({ max_messages: READ_BATCH, expires: 2_000 });
  try {
    for await (const m of messages) {
      const { streamSequence: seq, pending } = m.info;
      if (seq > lastSeq) return;
      yield { msg: m, seq };
      if (seq === lastSeq || pending === 0) return;
    }
  } finally {
    messages.stop();
  }
}

/** Digits at `at` as a number, or NaN when there are none. */
function digitsAt(text: string, at: number): number {
  let v = 0;
  let i = at;
  for (; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 48 || c > 57) break;
    v = v * 10 + (c - 48);
  }
  return i === at ? Number.NaN : v;
}

/**
 * The input sequence (when the verdict is for `inputStream`), winning rule id
 * and hit rule ids of a verdict body (spec section 5). Verdicts as tortmatch
 * writes them (keys in its order) are scanned, not parsed: a third of the cost
 * of JSON.parse; anything else is parsed.
 */
export function readVerdict(text: string, inputStream: string): { seq: number; ruleId: number | null; hits: number[] } {
  const rule = text.indexOf(',"ruleId":');
  const hitsAt = text.indexOf(',"hits":[', rule);
  const versionAt = text.indexOf('],"rulesVersion":', hitsAt);
  const sourceAt = text.indexOf(',"source":{"stream":', versionAt);
  if (rule !== -1 && hitsAt !== -1 && versionAt !== -1 && sourceAt !== -1) {
    const streamAt = sourceAt + ',"source":{"stream":'.length;
    const quoted = JSON.stringify(inputStream);
    const sameStream = text.startsWith(`${quoted},"seq":`, streamAt);
    const seq = sameStream ? digitsAt(text, streamAt + quoted.length + 7) : Number.NaN;
    const ruleId = text.startsWith("null", rule + 10) ? null : digitsAt(text, rule + 10);
    const hits: number[] = [];
    for (let at = text.indexOf('{"ruleId":', hitsAt); at !== -1 && at < versionAt; at = text.indexOf('{"ruleId":', at + 10)) hits.push(digitsAt(text, at + 10));
    if (!Number.isNaN(ruleId ?? 0) && !hits.some(Number.isNaN)) return { seq, ruleId, hits };
  }
  const v = JSON.parse(text) as { ruleId: number | null; hits: { ruleId: number }[]; source: { stream: string; seq: number } | null };
  return { seq: v.source?.stream === inputStream ? v.source.seq : Number.NaN, ruleId: v.ruleId, hits: v.hits.map((h) => h.ruleId) };
}

/**
 * The inputs to compare, by sequence: from `--from-seq`, from the first input stored at or after
 * `--since`, or from the first retained, to the last stored now.
 */
async function inputRange(o: WhatIfOptions): Promise<{ startSeq: number; last: number }> {
  const info = await o.jsm.streams.info(o.inputStream);
  const first = info.state.first_seq;
  const last = info.state.last_seq;
  const retained = last >= first && info.state.messages > 0;
  if (o.sinceMs === undefined) return { startSeq: o.fromSeq !== undefined ? Math.max(first, o.fromSeq) : first, last };
  // Nothing stored at or after the instant (an idle stream): nothing to read. An ordered consumer
  // started past the last message would wait for the next one for ever.
  const newest = retained ? await o.jsm.streams.getMessage(o.inputStream, { seq: last }).catch(() => null) : null;
  if (newest !== null && newest.time.getTime() >= o.sinceMs) {
    for await (const { seq } of readStream(o.js, o.inputStream, last, { sinceMs: o.sinceMs })) return { startSeq: seq, last };
  }
  return { startSeq: last + 1, last };
}

/** The recorded verdicts of the inputs compared, indexed by input sequence (the last one wins if there are two); each first one's hits told to `hit`. */
async function indexRecorded(
  o: WhatIfOptions,
  verdicts: { first: number; last: number },
  index: { base: number; last: number; actionBySeq: Uint8Array; ruleBySeq: Float64Array },
  hit: (ruleId: number) => void,
): Promise<void> {
  const { base, last, actionBySeq, ruleBySeq } = index;
  for await (const { msg: m } of readStream(o.js, o.verdictStream, verdicts.last, { seq: verdicts.first })) {
    // The source from the body (parsed anyway for the rule ids): no header decoding per verdict.
    const v = readVerdict(m.string(), o.inputStream);
    const seq = v.seq;
    if (!(seq >= base && seq <= last)) continue;
    const code = CODE.get(m.subject.slice(m.subject.lastIndexOf(".") + 1));
    if (code === undefined) continue;
    if (actionBySeq[seq - base] === 0) for (const id of v.hits) hit(id);
    actionBySeq[seq - base] = code;
    ruleBySeq[seq - base] = v.ruleId ?? Number.NaN;
  }
}

/** --out with recorded verdicts: each changed input once, its recorded verdict and the candidate's (a second pass over the verdicts). */
async function writeChangedRecorded(
  o: WhatIfOptions,
  out: (line: string) => Promise<void> | void,
  verdicts: { first: number; last: number },
  index: { base: number; last: number; changedBits: Uint8Array },
): Promise<void> {
  const { base, last, changedBits } = index;
  const now = o.now ?? (() => new Date());
  for await (const { msg: m } of readStream(o.js, o.verdictStream, verdicts.last, { seq: verdicts.first })) {
    const seq = readVerdict(m.string(), o.inputStream).seq;
    if (!(seq >= base && seq <= last) || (changedBits[(seq - base) >> 3]! & (1 << ((seq - base) & 7))) === 0) continue;
    changedBits[(seq - base) >> 3]! &= ~(1 << ((seq - base) & 7)); // once, even if two verdicts were recorded
    const input = await o.jsm.streams.getMessage(o.inputStream, { seq });
    const checked = input === null ? null : decodeResult(input.data);
    if (checked === null || !checked.ok) continue;
    const source = { stream: o.inputStream, seq };
    const after = buildVerdict(checked.value, matchResult(o.candidate, checked.value), o.candidate.version, source, now().toISOString());
    await out(`${JSON.stringify({ source, before: JSON.parse(m.string()), after })}\n`);
  }
}

/** The rules whose hits differ, the largest change first. */
function ruleChangesOf(before: Map<number, number>, after: Map<number, number>) {
  return [...new Set([...before.keys(), ...after.keys()])]
    .map((ruleId) => ({ ruleId, before: before.get(ruleId) ?? 0, after: after.get(ruleId) ?? 0 }))
    .filter((r) => r.before !== r.after)
    .sort((a, b) => Math.abs(b.after - b.before) - Math.abs(a.after - a.before) || a.ruleId - b.ruleId);
}

export async function runWhatIf(o: WhatIfOptions): Promise<WhatIfReport> {
  const { startSeq, last } = await inputRange(o);

  // The index covers the inputs compared only (from startSeq): 9 bytes each (an action code, the winning rule id).
  const base = startSeq;
  const n = Math.max(0, last - base + 1);
  const actionBySeq = new Uint8Array(n);
  const ruleBySeq = new Float64Array(n); // the winning rule id; NaN for none
  const hitsBefore = new Map<number, number>();
  const count = (m: Map<number, number>, id: number) => m.set(id, (m.get(id) ?? 0) + 1);

  // 1. The recorded verdicts, indexed by input sequence (the last one wins if there are two);
  //    the rules they hit counted for the inputs that will be compared. Not with a live baseline.
  const live = o.baseline ?? null;
  const verdictsInfo = await o.jsm.streams.info(o.verdictStream);
  if (live === null && verdictsInfo.state.messages > 0) {
    await indexRecorded(o, { first: verdictsInfo.state.first_seq, last: verdictsInfo.state.last_seq }, { base, last, actionBySeq, ruleBySeq }, (id) => count(hitsBefore, id));
  }

  // 2. The inputs, matched against the candidate rules, compared with what was recorded.
  const summary = { inputs: 0, compared: 0, changed: 0, unchanged: 0, invalid: 0, noVerdict: 0, transitions: {} as Record<string, number> };
  const hitsAfter = new Map<number, number>();
  const samples: WhatIfSample[] = [];
  const perTransition = new Map<string, number>();
  const changedBits = o.out ? new Uint8Array(Math.ceil(n / 8)) : null;
  const total = Math.max(0, last - startSeq + 1);
  if (n > 0 && startSeq <= last) {
    for await (const { msg: m, seq: inputSeq } of readStream(o.js, o.inputStream, last, { seq: startSeq })) {
      summary.inputs++;
      if (summary.inputs % 1_000 === 0) o.onProgress?.(summary.inputs, total);
      const checked = decodeResult(m.data);
      if (!checked.ok) {
        summary.invalid++;
        continue;
      }
      const code = live === null ? actionBySeq[inputSeq - base]! : 0;
      if (live === null && code === 0) {
        summary.noVerdict++;
        continue;
      }
      summary.compared++;
      const after = matchResult(o.candidate, checked.value);
      for (const h of after.hits) count(hitsAfter, h.ruleId);
      let before: { action: VerdictAction; ruleId: number | null };
      // With a live baseline, the live rules' decision, kept for the --out line.
      const liveDecision = live === null ? null : matchResult(live, checked.value);
      if (liveDecision !== null) {
        for (const h of liveDecision.hits) count(hitsBefore, h.ruleId);
        before = { action: liveDecision.action, ruleId: liveDecision.ruleId };
      } else {
        const beforeRule = ruleBySeq[inputSeq - base]!;
        before = { action: ACTION_OF[code]!, ruleId: Number.isNaN(beforeRule) ? null : beforeRule };
      }
      if (before.action === after.action && before.ruleId === after.ruleId) {
        summary.unchanged++;
        continue;
      }
      summary.changed++;
      const key = `${before.action}->${after.action}`;
      summary.transitions[key] = (summary.transitions[key] ?? 0) + 1;
      const kept = perTransition.get(key) ?? 0;
      if (kept < (o.samplesPerTransition ?? 3)) {
        perTransition.set(key, kept + 1);
        samples.push({ seq: inputSeq, before, after: { action: after.action, ruleId: after.ruleId } });
      }
      if (live !== null && liveDecision !== null && o.out) {
        // Both verdicts computed here: written as they are found.
        const source = { stream: o.inputStream, seq: inputSeq };
        const at = (o.now ?? (() => new Date()))().toISOString();
        const liveVerdict = buildVerdict(checked.value, liveDecision, live.version, source, at);
        await o.out(`${JSON.stringify({ source, before: liveVerdict, after: buildVerdict(checked.value, after, o.candidate.version, source, at) })}\n`);
      } else if (changedBits) changedBits[(inputSeq - base) >> 3]! |= 1 << ((inputSeq - base) & 7);
    }
  }
  o.onProgress?.(summary.inputs, summary.inputs);

  // 3. --out: the changed inputs, with the recorded verdict and the candidate's, in a second pass.
  if (live === null && o.out && changedBits && summary.changed > 0) {
    await writeChangedRecorded(o, o.out, { first: verdictsInfo.state.first_seq, last: verdictsInfo.state.last_seq }, { base, last, changedBits });
  }
  return { summary, ruleChanges: ruleChangesOf(hitsBefore, hitsAfter), samples, candidateVersion: o.candidate.version, baseline: live === null ? { kind: "recorded" } : { kind: "live", version: live.version } };
}
