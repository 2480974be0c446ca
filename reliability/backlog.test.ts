/**
 * Backlog: 1,000,000 results queued, the service started with
 * --max-old-space-size=256. No out-of-memory, RSS stays bounded, everything
 * drains. Reports the peak RSS and the drain rate.
 */
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { describe, expect, it } from "vitest";
import { memoryOf } from "../test/support/process-memory.js";
import { spawnService } from "../test/support/cli.js";
import { consumerState, eventually } from "../test/support/nats.js";
import { resultLines, useServiceStack } from "../test/support/service.js";

const RESULTS = Number(process.env.BACKLOG_RESULTS ?? 1_000_000);
const stack = useServiceStack({ LOG_LEVEL: "warn", TORT_DUPLICATE_WINDOW_MS: "600000" });


describe("backlog", () => {
  it(`${RESULTS.toLocaleString("en")} results queued, --max-old-space-size=256: bounded RSS, everything drains`, async () => {
    const { nc, config, env } = stack;
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: config.TORT_INPUT_STREAM, subjects: [config.TORT_INPUT_SUBJECTS], max_bytes: 4 * 2 ** 30 });
    const js = jetstream(nc);
    const enc = new TextEncoder();
    const bodies = resultLines(10_000, 0).map((l) => enc.encode(l));
    const subject = config.TORT_INPUT_SUBJECTS.replace(">", "backlog");
    const publishStarted = performance.now();
    for (let i = 0; i < RESULTS; i += 1_000) {
      await Promise.all(Array.from({ length: Math.min(1_000, RESULTS - i) }, (_, k) => js.publish(subject, bodies[(i + k) % bodies.length]!)));
    }
    const publishSeconds = (performance.now() - publishStarted) / 1000;

    const service = spawnService(env, ["--max-old-space-size=256"]);
    const started = performance.now();
    // A crash (out of memory) fails the test at once, with the service's log, not after the drain timeout.
    const crashed = service.exited.then((code) => {
      throw new Error(`the service exited (${code}) before the backlog drained:\n${service.log().slice(-4_000)}`);
    });
    await Promise.race([
      eventually(async () => {
        const s = await consumerState(nc, config);
        return s.pending === 0 && s.ackPending === 0;
      }, "the backlog drained", 1_200_000, 1_000),
      crashed,
    ]);
    crashed.catch(() => {}); // the normal exit at the end is not a failure
    const seconds = (performance.now() - started) / 1000;
    const { peakMb, rssMb } = memoryOf(service.child.pid!);
    const verdicts = (await jsm.streams.info(config.TORT_VERDICT_STREAM)).state.messages;
    console.log(`backlog: ${RESULTS.toLocaleString("en")} queued (published in ${publishSeconds.toFixed(0)} s); service with --max-old-space-size=256 drained them in ${seconds.toFixed(0)} s = ${Math.round(RESULTS / seconds).toLocaleString("en")}/s; peak RSS ${peakMb.toFixed(0)} MB (VmHWM), ${rssMb.toFixed(0)} MB at the end; ${verdicts.toLocaleString("en")} verdicts`);
    expect(verdicts).toBe(RESULTS);
    expect(peakMb).toBeLessThan(400);
    service.child.kill("SIGTERM");
    expect(await service.exited).toBe(0);
  });
});
