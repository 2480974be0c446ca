/**
 * `tortmatch verdicts [--last N] [--follow] [--json]`: the verdicts in TORT_VERDICTS, oldest first
 * (the last N, 20 by default; 0 for all), one line each, or as NDJSON; `--follow` keeps printing new
 * ones until Ctrl-C. Reads with an ordered consumer: the service's durable consumer is never touched.
 */
import { DeliverPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { Config } from "../config.js";
import { isNotFound } from "../ingest/topology.js";
import { withNats } from "./ops-commands.js";

interface VerdictLine {
  readonly aid: number;
  readonly cid: number;
  readonly action: string;
  readonly ruleId: number | null;
  readonly rulesVersion: string;
  readonly source: { stream: string; seq: number } | null;
  readonly decidedAt: string;
}

const line = (seq: number, v: VerdictLine) =>
  `${String(seq).padStart(8)}  ${v.action.padEnd(6)}  ${v.ruleId === null ? "-".padEnd(12) : `rule ${v.ruleId}`.padEnd(12)}  aid ${v.aid} cid ${v.cid}  input ${v.source ? `${v.source.stream}:${v.source.seq}` : "-"}  rules ${v.rulesVersion}  at ${v.decidedAt}\n`;

export const verdictsCommand = (opts: { last: number; follow?: boolean; json?: boolean }) =>
  withNats(async (nc, config: Config) => {
    const jsm = await jetstreamManager(nc);
    let state;
    try {
      state = (await jsm.streams.info(config.TORT_VERDICT_STREAM)).state;
    } catch (err) {
      if (!isNotFound(err)) throw err;
      throw new Error(`no verdict stream ${config.TORT_VERDICT_STREAM}: no instance has run here yet`);
    }
    const empty = state.messages === 0;
    if (empty && !opts.follow) {
      process.stderr.write(`no verdicts in ${config.TORT_VERDICT_STREAM}\n`);
      return;
    }
    const from = empty ? state.last_seq + 1 : opts.last > 0 ? Math.max(state.first_seq, state.last_seq - opts.last + 1) : state.first_seq;
    const consumer = await jetstream(nc).consumers.get(config.TORT_VERDICT_STREAM, { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: from });
    const messages = await consumer.consume({ max_messages: 256 });
    const stop = () => messages.stop();
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
    try {
      for await (const m of messages) {
        const seq = m.info.streamSequence;
        process.stdout.write(opts.json ? `${m.string()}\n` : line(seq, m.json<VerdictLine>()));
        if (!opts.follow && (seq >= state.last_seq || m.info.pending === 0)) break;
      }
    } finally {
      process.off("SIGINT", stop);
      process.off("SIGTERM", stop);
      messages.stop();
    }
  });
