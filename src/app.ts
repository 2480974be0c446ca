/**
 * Composition root shared by `run` and `demo`: NATS connection → inspector →
 * database pool → service (actors and pipeline) → ops server. Each is opened
 * and closed here, once: the service first, then the rest in the reverse order
 * of start-up; a failure during start-up closes what was opened and rethrows
 * (the process exits 1 with the reason, it never hangs).
 */
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import type { Config } from "./config.js";
import { connectNats, trackConnection } from "./nats/connection.js";
import { startInspector, type InspectorBridge } from "./ops/inspector.js";
import type { OpsServer } from "./ops/ops-server.js";
import { serveOps } from "./ops/serve-ops.js";
import { openRuleDatabase } from "./rules/database.js";
import { startService, type RunningService } from "./service.js";
import { createClosers } from "./service/closers.js";

export interface AppOptions {
  readonly config: Config;
  readonly log: Logger;
  /** The ops server's port: TORT_OPS_PORT for `run`, 0 (any free port) for `demo`, null = off. */
  readonly opsPort: number | null;
  /** Attach the Stately inspector, its bridge on 127.0.0.1 at this port. */
  readonly inspectPort?: number;
  /** The NATS connection's name. */
  readonly connectionName?: string;
  /** How long one pull request waits on the server (default 5 s). */
  readonly pullExpiresMs?: number;
}

export interface App {
  readonly service: RunningService;
  readonly nc: NatsConnection;
  readonly ops: OpsServer | null;
  readonly inspector: InspectorBridge | null;
  /** Stop the service (drain, settle, stop the rule cache), then close everything else, once; resolves with the service's failure, if any. */
  close(): Promise<string | null>;
}

export async function startApp(o: AppOptions): Promise<App> {
  const { config, log } = o;
  /**
   * Shutdown, once, in one place: the service first (stop pulling, settle what is in flight, stop the
   * rule cache; the ops server still answers meanwhile), then every other part in the reverse order
   * of start-up (createClosers: each runs even if one before it failed).
   */
  const parts = createClosers(log);
  let service: RunningService | null = null;
  let closing: Promise<string | null> | null = null;
  const closeAll = () =>
    (closing ??= (async () => {
      const failure = service ? await service.stop().catch((err: unknown) => `stopping failed: ${(err as Error)?.message ?? String(err)}`) : null;
      await parts.closeAll();
      return failure;
    })());

  try {
    const nc = await connectNats(config, o.connectionName);
    // Drain flushes the last acks before closing.
    parts.add("nats", () => nc.drain());
    const natsConnected = trackConnection(nc, log);

    let inspector: InspectorBridge | null = null;
    if (o.inspectPort !== undefined) {
      const bridge = await startInspector({ port: o.inspectPort });
      inspector = bridge;
      parts.add("inspector", () => bridge.close());
      log.info({ url: bridge.url }, "Stately inspector bridge listening (open it in a browser with internet access)");
    }

    const database = openRuleDatabase({ url: config.DATABASE_URL });
    parts.add("database", () => database.close());
    const running = await startService({
      config,
      log,
      nc,
      database,
      natsConnected,
      ...(o.pullExpiresMs !== undefined ? { pullExpiresMs: o.pullExpiresMs } : {}),
      ...(inspector ? { inspect: inspector.inspect.next!.bind(inspector.inspect) } : {}),
    });
    service = running;

    let ops: OpsServer | null = null;
    if (o.opsPort !== null) {
      try {
        ops = await serveOps({ service: running, config, port: o.opsPort, natsConnected, inspectorUrl: inspector?.url ?? null });
      } catch (err) {
        throw new Error(`the ops server cannot listen on ${config.TORT_OPS_HOST}:${o.opsPort} (TORT_OPS_PORT, --ops-port; 0 turns it off): ${(err as Error).message}`, { cause: err });
      }
      const server = ops;
      parts.add("ops server", () => server.close());
      log.info({ url: ops.url }, "status page, /metrics, /healthz and /readyz listening");
    }

    return { service: running, nc, ops, inspector, close: closeAll };
  } catch (err) {
    await closeAll();
    throw err;
  }
}
