/**
 * The ops server of one running service: metrics, health, readiness and the
 * status page, with the throughput meter they show. `run` and `demo` both use it.
 */
import { redactConfig, type Config } from "../config.js";
import type { OpsView } from "./ops-view.js";
import { servesPages, startOpsServer, type OpsServer } from "./ops-server.js";
import { recordHistory } from "./history.js";
import { currentStatus } from "./status.js";

/** Settled results per second over a sliding window of `windowS` samples taken every second. */
function throughputMeter(read: () => number, windowS = 5): { rate(): number; stop(): void } {
  const samples: number[] = [read()];
  const timer = setInterval(() => {
    samples.push(read());
    if (samples.length > windowS + 1) samples.shift();
  }, 1000);
  timer.unref();
  return {
    rate: () => (samples.length < 2 ? 0 : (samples[samples.length - 1]! - samples[0]!) / (samples.length - 1)),
    stop: () => clearInterval(timer),
  };
}

export interface ServeOpsOptions {
  readonly service: OpsView;
  readonly config: Config;
  /** Where to listen: TORT_OPS_PORT for `run`, 0 (any free port) for `demo`. */
  readonly port: number;
  readonly natsConnected: () => boolean;
  readonly inspectorUrl: string | null;
}

export async function serveOps(o: ServeOpsOptions): Promise<OpsServer> {
  const startedAt = Date.now();
  const shownConfig = redactConfig(o.config); // once: the configuration is frozen
  const meter = throughputMeter(() => o.service.stats.settled);
  const history = recordHistory(
    {
      settled: () => o.service.stats.settled,
      lag: () => o.service.consumerLag(),
      latencies: o.service.latencies,
      inFlight: () => o.service.stats.inFlight,
      limit: () => o.service.limit.limit,
      concurrency: () => o.service.concurrency.view(),
      snapshot: () => o.service.snapshot$.value,
    },
    o.config.TORT_CHART_SAMPLE_MS,
  );
  try {
    const server = await startOpsServer({
      host: o.config.TORT_OPS_HOST,
      port: o.port,
      registry: o.service.metrics.registry,
      debug: o.config.TORT_OPS_DEBUG === "on",
      pages: servesPages(o.config.TORT_OPS_HOST, o.config.TORT_OPS_PAGES),
      status: () =>
        currentStatus({ service: o.service, natsConnected: o.natsConnected, config: shownConfig, startedAt, throughput: meter.rate, inspector: o.inspectorUrl }),
      history: () => ({ everyMs: o.config.TORT_CHART_SAMPLE_MS, samples: history.samples(), marks: o.service.recent.transitions }),
    });
    return {
      url: server.url,
      eventClients: server.eventClients,
      async close() {
        meter.stop();
        history.stop();
        await server.close();
      },
    };
  } catch (err) {
    meter.stop();
    history.stop();
    throw err;
  }
}
