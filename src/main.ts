/**
 * The process of `tortmatch run`: config → the app (connections, actors,
 * pipeline, ops) → signals → shutdown. Bounded in time: the drain has its
 * own timeout, and a watchdog exits if anything hangs after it.
 */
import { startApp } from "./app.js";
import { redactConfig, type Config } from "./config.js";
import { createLogger } from "./ops/logger.js";

export interface MainOptions {
  /** Attach the Stately inspector on this port (127.0.0.1). */
  readonly inspectPort?: number;
}

/** Runs until SIGTERM/SIGINT; resolves with the process exit code. */
export async function runMain(config: Config, options: MainOptions = {}): Promise<number> {
  const log = createLogger(config.LOG_LEVEL);
  const startedAt = Date.now();
  log.info({ config: redactConfig(config) }, "tortmatch starting");

  const app = await startApp({
    config,
    log,
    opsPort: config.TORT_OPS_PORT === 0 ? null : config.TORT_OPS_PORT,
    ...(options.inspectPort !== undefined ? { inspectPort: options.inspectPort } : {}),
  });
  const { service } = app;
  log.info({ concurrency: service.limit.limit }, "tortmatch running");

  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    if (++signals > 1) {
      log.warn({ signal }, "second signal: exiting without waiting");
      process.exit(1);
    }
    log.info({ signal, inFlight: service.stats.inFlight }, "stopping: no more pulls, finishing in-flight messages");
    setTimeout(() => {
      log.error("shutdown took too long; exiting");
      process.exit(1);
    }, config.TORT_SHUTDOWN_TIMEOUT_MS + 10_000).unref();
    void app.close();
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);

  await service.stopped;
  const failure = await app.close();
  const { received, outcomes, verdicts } = service.stats;
  log.info({ seconds: (Date.now() - startedAt) / 1000, received, outcomes, verdicts, failure: failure ?? undefined }, "tortmatch stopped");
  return failure === null ? 0 : 1;
}
