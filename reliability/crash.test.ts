/**
 * Crash: kill -9 the service at 5 random points of a 50,000-result run,
 * restarting it each time. At the end every valid input has exactly one
 * verdict and every invalid one exactly one dead letter.
 */
import { jetstreamManager } from "@nats-io/jetstream";
import { describe, expect, it } from "vitest";
import { decodeResultText } from "../src/ingest/decode-result.js";
import { spawnService, type SpawnedService } from "../test/support/cli.js";
import { consumerState, eventually, publishInputs, readStream } from "../test/support/nats.js";
import { resultLines, useServiceStack } from "../test/support/service.js";

const RESULTS = Number(process.env.CRASH_RESULTS ?? 50_000);
const KILLS = 5;
// Quick redelivery after a crash; room for several crashes per message; a window covering all of it.
const stack = useServiceStack({ LOG_LEVEL: "warn", TORT_ACK_WAIT_MS: "3000", TORT_PUBLISH_TIMEOUT_MS: "1500", TORT_MAX_DELIVER: "20", TORT_NAK_DELAY_MS: "200", TORT_DUPLICATE_WINDOW_MS: "600000" });

const streamCount = async (stream: string) => (await (await jetstreamManager(stack.nc)).streams.info(stream).catch(() => null))?.state.messages ?? 0;

describe("crash", () => {
  it(`kill -9 at ${KILLS} random points of a ${RESULTS}-result run: nothing lost, nothing duplicated`, async () => {
    const { nc, config, env } = stack;
    const lines = resultLines(RESULTS, 0.005);
    const seqs = await publishInputs(nc, config, lines);
    const invalid = new Set(seqs.filter((_, i) => !decodeResultText(lines[i]!).ok));
    const valid = new Set(seqs.filter((s) => !invalid.has(s)));
    // Random points, as a count of outputs reached, spread over the run.
    const points = Array.from({ length: KILLS }, () => Math.floor(RESULTS * (0.05 + 0.85 * Math.random()))).sort((a, b) => a - b);

    let service: SpawnedService = spawnService(env);
    const kills: string[] = [];
    for (const point of points) {
      await eventually(async () => (await streamCount(config.TORT_VERDICT_STREAM)) + (await streamCount(config.TORT_DEADLETTER_STREAM)) >= point, `output reaching ${point}`, 300_000, 20);
      service.child.kill("SIGKILL");
      await service.exited;
      kills.push(`${point} (in flight then: ${(await consumerState(nc, config)).ackPending})`);
      service = spawnService(env);
    }
    await eventually(async () => {
      const s = await consumerState(nc, config);
      return s.pending === 0 && s.ackPending === 0 && (await streamCount(config.TORT_VERDICT_STREAM)) + (await streamCount(config.TORT_DEADLETTER_STREAM)) >= RESULTS;
    }, "everything settled", 300_000, 200);
    service.child.kill("SIGTERM");
    expect(await service.exited).toBe(0);

    const verdictSeqs = (await readStream(nc, config.TORT_VERDICT_STREAM)).map((m) => m.json<{ source: { seq: number } }>().source.seq);
    const deadSeqs = (await readStream(nc, config.TORT_DEADLETTER_STREAM)).map((m) => Number(m.headers!.get("Tort-Source-Seq")));
    const lost = [...valid].filter((s) => !verdictSeqs.includes(s)).length + [...invalid].filter((s) => !deadSeqs.includes(s)).length;
    const duplicated = verdictSeqs.length - new Set(verdictSeqs).size + (deadSeqs.length - new Set(deadSeqs).size);
    const redelivered = (await consumerState(nc, config)).redelivered;
    console.log(`crash: ${RESULTS} inputs (${valid.size} valid, ${invalid.size} invalid), kill -9 at outputs ${kills.join(", ")}`);
    console.log(`crash: verdicts ${verdictSeqs.length}, dead letters ${deadSeqs.length}, redelivered ${redelivered}, lost = ${lost}, duplicated = ${duplicated}`);
    expect(lost).toBe(0);
    expect(duplicated).toBe(0);
    expect(new Set(verdictSeqs)).toEqual(valid);
    expect(new Set(deadSeqs)).toEqual(invalid);
  });
});
