/**
 * Composition root of `tortmatch run`: config → connections → inspector →
 * service (actors and pipeline) → ops server → signals; shutdown in the
 * reverse order, in one place, bounded in time.
 */
import { redactConfig, type Config } from "./config.js";
import { connectNats, trackConnection } from "./ingest/nats-connection.js";
import { startInspector, type InspectorBridge } from "./ops/inspector.js";
import { createLogger } from "./ops/logger.js";
import type { OpsServer } from "./ops/ops-server.js";
import { serveOps } from "./ops/serve-ops.js";
import { openRuleDatabase } from "./rules/database.js";
import { startService } from "./service.js";

export interface MainOptions {
  /** Attach the Stately inspector on this port (127.0.0.1). */
  readonly inspectPort?: number;
}

/** Runs until SIGTERM/SIGINT; resolves with the process exit code. */
export async function runMain(config: Config, options: MainOptions = {}): Promise<number> {
  const log = createLogger(config.LOG_LEVEL);
  const startedAt = Date.now();
  log.info({ config: redactConfig(config) }, "tortmatch starting");

  const nc = await connectNats(config);
  const natsConnected = trackConnection(nc, log);
  const database = openRuleDatabase({ url: config.DATABASE_URL });
  let inspector: InspectorBridge | null = null;
  if (options.inspectPort !== undefined) {
    inspector = await startInspector({ port: options.inspectPort });
    log.info({ url: inspector.url }, "Stately inspector bridge listening (open it in a browser with internet access)");
  }
  const service = await startService({ config, log, nc, database, ...(inspector ? { inspect: inspector.inspect.next!.bind(inspector.inspect) } : {}) });
  let ops: OpsServer | null = null;
  if (config.TORT_OPS_PORT !== 0) {
    try {
      ops = await serveOps({ service, config, port: config.TORT_OPS_PORT, natsConnected, inspectorUrl: inspector?.url ?? null });
    } catch (err) {
      // Not a service nobody can watch: stop what started, and say why.
      await service.stop();
      await nc.drain();
      await inspector?.close();
      throw new Error(`the ops server cannot listen on ${config.TORT_OPS_HOST}:${config.TORT_OPS_PORT} (TORT_OPS_PORT, --ops-port; 0 turns it off): ${(err as Error).message}`, { cause: err });
    }
    log.info({ url: ops.url }, "status page, /metrics, /healthz and /readyz listening");
  }
  log.info({ database: database.describe, concurrency: service.limit.limit }, "tortmatch running");

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
  await ops?.close();
  await nc.drain(); // flushes the last acks before closing
  await inspector?.close();
  const { received, outcomes, verdicts } = service.stats;
  log.info({ seconds: (Date.now() - startedAt) / 1000, received, outcomes, verdicts, failure: failure ?? undefined }, "tortmatch stopped");
  return failure === null ? 0 : 1;
}
