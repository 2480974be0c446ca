/** `tortmatch run`: the live service, until SIGTERM or SIGINT. */
import { connect } from "@nats-io/transport-node";
import { loadConfig } from "../config.js";
import { createLogger } from "../ops/logger.js";
import { openRuleDatabase } from "../rules/database.js";
import { startService } from "../service.js";

export async function runCommand(): Promise<void> {
  const config = loadConfig();
  const log = createLogger(config.LOG_LEVEL);
  // noAsyncTraces: nats.js otherwise builds an Error (stack capture included) per request: ~25% of CPU per message.
  const nc = await connect({ servers: config.NATS_URL.split(","), name: "tortmatch", maxReconnectAttempts: -1, noAsyncTraces: true }).catch((err: unknown) => {
    throw new Error(`connecting to NATS at ${config.NATS_URL} failed: ${(err as Error).message}`, { cause: err });
  });
  const database = openRuleDatabase({ url: config.DATABASE_URL });
  const started = Date.now();
  const service = await startService({ config, log, nc, database });
  log.info({ database: database.describe, nats: config.NATS_URL, concurrency: config.TORT_CONCURRENCY }, "tortmatch running");

  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    if (++signals > 1) {
      log.warn({ signal }, "second signal: exiting without waiting");
      process.exit(1);
    }
    log.info({ signal, inFlight: service.stats.inFlight }, "stopping: no more pulls, finishing in-flight messages");
    // Bounded: the drain has its own timeout; this catches anything that hangs after it.
    setTimeout(() => {
      log.error("shutdown took too long; exiting");
      process.exit(1);
    }, config.TORT_SHUTDOWN_TIMEOUT_MS + 10_000).unref();
    void service.stop();
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);

  const failure = await service.stopped;
  await nc.drain(); // flushes the last acks before closing
  const { received, outcomes, verdicts } = service.stats;
  log.info({ seconds: (Date.now() - started) / 1000, received, outcomes, verdicts, failure: failure ?? undefined }, "tortmatch stopped");
  process.exitCode = failure === null ? 0 : 1;
}
