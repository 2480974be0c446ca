/**
 * Composition root of the live service: given an open NATS connection and rule database (both the
 * caller's), build the parts in dependency order (topology, the counts and gates, the tables
 * check, the service registration, metrics, the rule loader, the messages' part, the actor system
 * and its follower) and start them. Each part that holds something is closed by `parts.closeAll()`,
 * in the reverse order, once: after the actor system has stopped, or on a failed start.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { BehaviorSubject, Subject } from "rxjs";
import { createActor, toPromise, type ActorRefFrom, type InspectionEvent } from "xstate";
import { ruleCacheMachine } from "../machines/rule-cache.machine.js";
import { serviceMachine, type ServiceInput } from "../machines/service.machine.js";
import type { Config } from "./config.js";
import { databaseIdentity } from "./fleet/rules-bucket.js";
import { createFleetView } from "./fleet/discover-fleet.js";
import { createByteBudget, type ByteBudget } from "./gate/byte-budget.js";
import { createConcurrencyControl, type ConcurrencyControl } from "./gate/concurrency-control.js";
import { createConcurrencyLimit, type ConcurrencyLimit } from "./gate/concurrency-limit.js";
import type { LiveConfigValues } from "./live-config/parse-live-config.js";
import type { RuleSnapshot } from "./match/snapshot.js";
import { createLatencyWindow } from "./ops/history.js";
import { createMetrics, type Metrics } from "./ops/metrics.js";
import type { OpsView } from "./ops/ops-view.js";
import { createServiceStats } from "./ops/service-stats.js";
import { watchTablesAccess } from "./rules/check-tables.js";
import type { RuleDatabase } from "./rules/database.js";
import { createRuleLoader } from "./rules/load-rules.js";
import { createFleetLink } from "./service/fleet-link.js";
import { followRuleCache } from "./service/follow-rule-cache.js";
import { changeNotices, configWatcher, lagPoller } from "./service/listeners.js";
import { createMessageFlow } from "./service/message-flow.js";
import { openTopology } from "./service/open-topology.js";
import { explainEndpoint, registerService } from "./service/registration.js";
import { provideRuleCache } from "./service/rule-cache-io.js";
import { confirmationClock, createServiceState, instanceStats } from "./service/service-state.js";
import type { InstanceStats } from "./fleet/discover-fleet.js";
import { createClosers } from "./service/closers.js";

export { noticeAsksFull } from "./service/listeners.js";

export interface ServiceDeps {
  readonly config: Config;
  readonly log: Logger;
  /** Owned by the caller, which closes it after the service has stopped. */
  readonly nc: NatsConnection;
  /** Owned by the caller (the app), which closes it after the service has stopped. */
  readonly database: RuleDatabase;
  readonly now?: () => Date;
  /** How long one pull request waits on the server (default 5 s; tests use less). */
  readonly pullExpiresMs?: number;
  /** Whether NATS is connected now (readiness); assumed while the connection is open when not given. */
  readonly natsConnected?: () => boolean;
  /** Passed to createActor: the Stately inspector attaches here. */
  readonly inspect?: (event: InspectionEvent) => void;
}

export interface RunningService extends OpsView {
  readonly actor: ActorRefFrom<typeof serviceMachine>;
  readonly limit: ConcurrencyLimit;
  /** Who sets the limit: the configured number or the adaptive limiter (`concurrency: auto`). */
  readonly concurrency: ConcurrencyControl;
  readonly budget: ByteBudget;
  readonly snapshot$: BehaviorSubject<RuleSnapshot | null>;
  readonly metrics: Metrics;
  /** What this instance reports of itself to the fleet (`tortmatch fleet`, the status page). */
  instanceStats(): InstanceStats;
  /** Stop pulling, settle in-flight work, stop the rule cache. Resolves with the failure, if any. */
  stop(): Promise<string | null>;
  /** Resolves when the actor system has stopped (by request or failure). */
  readonly stopped: Promise<string | null>;
}

export async function startService(deps: ServiceDeps): Promise<RunningService> {
  const { config: c, log, nc, database } = deps;
  const now = deps.now ?? (() => new Date());
  const parts = createClosers(log);
  try {
    const topology = await openTopology(nc, c, log);
    const { stats, limit, concurrency, budget, latencies, snapshot$, giveBack$ } = createFlowState(c, log);
    parts.add("adaptive concurrency", async () => concurrency.stop());
    const state = createServiceState(c.TORT_REFRESH_INTERVAL_MS);
    const link = createFleetLink();

    const tables = watchTablesAccess(database, { periodMs: c.TORT_REFRESH_INTERVAL_MS, log });
    parts.add("tables check", () => tables.stop());
    const reportStats = () => instanceStats(state, tables, { inFlight: stats.inFlight, ...concurrency.view() });
    const registration = { serviceName: c.TORT_SERVICE_NAME, consumer: c.TORT_CONSUMER, inputStream: c.TORT_INPUT_STREAM, explainSubject: c.TORT_EXPLAIN_SUBJECT };
    const svc = await registerService(nc, registration, reportStats);
    parts.add("service registration", () => svc.stop());
    const instanceId = svc.info().id;
    const fleetView = createFleetView(nc, { service: c.TORT_SERVICE_NAME, consumer: c.TORT_CONSUMER, periodMs: c.TORT_LAG_POLL_MS });
    const confirmedAt = confirmationClock(state, link, () => now().getTime());

    const metrics = createMetrics({
      stats,
      inFlight: () => stats.inFlight,
      limit: () => limit.limit,
      concurrency: () => concurrency.view(),
      waiting: () => stats.waiting,
      snapshot: () => snapshot$.value,
      ruleCacheState: () => state.cacheState,
      ruleCacheStates: Object.keys(ruleCacheMachine.config.states ?? {}),
      now: () => now().getTime(),
      lag: () => state.lag(),
      ready: () => snapshot$.value !== null && (deps.natsConnected?.() ?? !nc.isClosed()),
      refreshIntervalMs: () => state.refreshIntervalMs,
      fleet: reportStats,
      confirmedAt,
      tablesReadable: () => tables.readable(),
    });
    const loader = createRuleLoader(database, {
      pageSize: c.TORT_LOAD_PAGE_SIZE,
      maxBytes: c.TORT_SNAPSHOT_MAX_MB * 2 ** 20,
      now,
      onMissedRows: (sums) => log.info(sums, "rule rows changed that an incremental read cannot see (deleted outright, or an edit committed long after its mtime); the refresh reads both tables whole"),
      onRowsRead: (rows) => metrics.rowsRead(rows),
    });
    const messages = createMessageFlow({ nc, topology, settings: c, stats, limit, control: concurrency, budget, latencies, snapshot$, giveBack$, metrics, log, now, pullExpiresMs: deps.pullExpiresMs ?? 5_000 });
    parts.add("verdict publisher", async () => messages.close());

    const machine = serviceMachine.provide({
      actors: {
        ruleCache: provideRuleCache({
          settings: { snapshotMaxMb: c.TORT_SNAPSHOT_MAX_MB, snapshotKeep: c.TORT_SNAPSHOT_KEEP, leaseMs: c.TORT_LEASE_MS, serviceName: c.TORT_SERVICE_NAME, consumer: c.TORT_CONSUMER, rulesBucket: c.TORT_RULES_BUCKET },
          nc, log, now, loader, metrics, tables, fleet: topology.fleet, instanceId, link,
          databaseId: databaseIdentity(c.TORT_DEPLOYMENT, c.DATABASE_URL),
        }),
        configWatcher: configWatcher(topology.configKv, liveConfigDefaults(c), log),
        changeNotices: changeNotices(nc, c.TORT_RULES_CHANGED_SUBJECT, () => {
          state.notices++;
          if (link.lease?.isLeader() && link.noticeOwedSince === null) link.noticeOwedSince = now().getTime();
          void tables.check();
        }),
        consumer: messages.consumer,
        exhaustedWorker: messages.exhaustedWorker,
        explainEndpoint: explainEndpoint(svc, nc, registration, { snapshot: () => snapshot$.value, stats: reportStats }),
        lagPoller: lagPoller(topology.jsm, { stream: c.TORT_INPUT_STREAM, consumer: c.TORT_CONSUMER, everyMs: c.TORT_LAG_POLL_MS }, state, log, () => now().getTime()),
      },
    });
    const actor = createActor(machine, { input: actorInput(c, topology.fleet !== null), ...(deps.inspect ? { inspect: deps.inspect } : {}) });
    actor.start();
    parts.add("actor system", async () => actor.stop());
    const cache = actor.system.get("ruleCache") as ActorRefFrom<typeof ruleCacheMachine>;
    const follower = followRuleCache(cache, { state, snapshot$, giveBack$, limit, link, rulesKv: topology.fleet?.rulesKv ?? null, log, now });
    parts.add("rule-cache follower", async () => follower.stop());

    // Every actor has stopped: the pipeline has drained (or given up at the shutdown timeout) and the
    // exhausted-deliveries worker with it, so no settlement is waiting for a PubAck any more.
    const stopped = toPromise(actor).then(async () => {
      await parts.closeAll();
      return actor.getSnapshot().context.failure;
    });
    return {
      actor,
      stats,
      limit,
      concurrency,
      budget,
      latencies,
      snapshot$,
      metrics,
      ruleCacheState: () => state.cacheState,
      ruleCache: () => state.cache ?? undefined,
      instanceId,
      instanceStats: reportStats,
      snapshotConfirmedAt: confirmedAt,
      tablesAccess: () => ({ readable: tables.readable(), reason: tables.reason() }),
      fleetInstances: () => fleetView.latest(),
      consumerLag: () => state.lag(),
      recent: follower.recent,
      stopped,
      async stop() {
        actor.send({ type: "STOP" });
        return stopped;
      },
    };
  } catch (err) {
    await parts.closeAll();
    throw err;
  }
}

/** What KV `tort_config`'s keys go back to when deleted: the environment's values. */
const liveConfigDefaults = (c: Config): LiveConfigValues => ({
  concurrency: c.TORT_CONCURRENCY,
  concurrency_min: c.TORT_CONCURRENCY_MIN,
  concurrency_max: c.TORT_CONCURRENCY_MAX,
  refresh_interval_ms: c.TORT_REFRESH_INTERVAL_MS,
});

/** The counts and the gates: what the pipeline, metrics and the status page share; and who sets the limit. */
function createFlowState(c: Pick<Config, "TORT_CONCURRENCY" | "TORT_CONCURRENCY_MIN" | "TORT_CONCURRENCY_MAX" | "TORT_WAIT_BUFFER" | "TORT_MAX_INFLIGHT_BYTES">, log: Logger) {
  // With `auto`, the adaptive limiter resumes at the old default after its first probe (it brings it inside its bounds).
  const limit = createConcurrencyLimit(c.TORT_CONCURRENCY === "auto" ? 64 : c.TORT_CONCURRENCY);
  limit.setCap(c.TORT_WAIT_BUFFER); // until the first snapshot: the wait buffer bounds what is pulled
  const stats = createServiceStats();
  const concurrency = createConcurrencyControl(
    limit,
    { concurrency: c.TORT_CONCURRENCY, min: c.TORT_CONCURRENCY_MIN, max: c.TORT_CONCURRENCY_MAX },
    { inFlight: () => stats.inFlight, heldBytes: () => stats.heldBytes, maxBytes: c.TORT_MAX_INFLIGHT_BYTES },
    log,
  );
  return {
    stats,
    limit,
    concurrency,
    budget: createByteBudget(c.TORT_MAX_INFLIGHT_BYTES),
    /** End-to-end latencies of the status page's current chart interval (bounded reservoir). */
    latencies: createLatencyWindow(),
    snapshot$: new BehaviorSubject<RuleSnapshot | null>(null),
    /** Emits when the first load failed: the messages waiting for it go back to JetStream. */
    giveBack$: new Subject<void>(),
  };
}

const actorInput = (c: Config, fleet: boolean): ServiceInput => ({
  ruleCache: {
    refreshIntervalMs: c.TORT_REFRESH_INTERVAL_MS,
    fullReloadEvery: c.TORT_FULL_RELOAD_EVERY,
    retryBaseMs: c.TORT_RETRY_BASE_MS,
    retryMaxMs: c.TORT_RETRY_MAX_MS,
    minRefreshGapMs: c.TORT_MIN_REFRESH_GAP_MS,
    fleet,
    leaderWaitMs: c.TORT_LEADER_WAIT_MS,
  },
  drainTimeoutMs: c.TORT_SHUTDOWN_TIMEOUT_MS,
});
