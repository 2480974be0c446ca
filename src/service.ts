/**
 * Composition root of the live service: given open connections and the
 * configuration, build the topology, the actors and the pipeline, and start
 * them. Buildable in tests; the process entry (cli/run-command.ts) stays small.
 */
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { Svcm, type Service } from "@nats-io/services";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { BehaviorSubject, Subject } from "rxjs";
import { createActor, fromCallback, fromPromise, toPromise, type ActorRefFrom, type InspectionEvent } from "xstate";
import { ruleCacheMachine, type LoadRulesInput } from "../machines/rule-cache.machine.js";
import { serviceMachine } from "../machines/service.machine.js";
import type { Config } from "./config.js";
import { createByteBudget, type ByteBudget } from "./gate/byte-budget.js";
import { createConcurrencyLimit, type ConcurrencyLimit } from "./gate/concurrency-limit.js";
import { pollConsumerLag, type ConsumerLag } from "./ingest/consumer-lag.js";
import { ensureTopology, EXHAUSTED_MAX_DELIVER } from "./ingest/topology.js";
import { watchLiveConfig } from "./live-config/watch-live-config.js";
import type { RuleSnapshot } from "./match/snapshot.js";
import { createLatencyWindow } from "./ops/history.js";
import { createMetrics, type Metrics } from "./ops/metrics.js";
import { createExplainQueue } from "./ops/explain-endpoint.js";
import { createServiceStats } from "./ops/service-stats.js";
import type { OpsView, ServiceEventRecord } from "./ops/ops-view.js";
import { runPipeline } from "./pipeline.js";
import { RuleStoreError, type RuleDatabase } from "./rules/database.js";
import { createRuleLoader } from "./rules/load-rules.js";
import { SnapshotOverBudgetError } from "./match/snapshot-budget.js";
import { createSkippedRowsReporter } from "./rules/report-skipped.js";
import { watchTablesAccess } from "./rules/check-tables.js";
import { createPublisher } from "./verdict/publish.js";
import { startExhaustedWorker } from "./verdict/settle-exhausted.js";
import { createVerdictLookup } from "./verdict/verdict-lookup.js";
import { startLeaderLease, type LeaderLease } from "./fleet/leader-lease.js";
import { announce, databaseIdentity, openRulesBucket, watchFleetKeys, type Announcement, type Pin } from "./fleet/rules-bucket.js";
import { openSnapshotStore, snapshotRows } from "./fleet/snapshot-store.js";
import { SnapshotFormatError } from "./fleet/snapshot-codec.js";
import { createFleetView, discoverFleet, type InstanceStats } from "./fleet/discover-fleet.js";
import { TORTMATCH_VERSION } from "./version.js";
import { warmUpStages } from "./warm-up.js";

/** Verdict publishes on the final delivery, at most (each bounded by TORT_PUBLISH_TIMEOUT_MS). */
export const FINAL_PUBLISH_ATTEMPTS = 3;
/** Most verdict headers one lookup for late redeliveries reads (about a minute's work at worst). */
export const VERDICT_LOOKUP_MAX_SCAN = 2_000_000;

/** A rule-change notice asks for a full reload when its body is `{"full":true}` (`tortmatch rules refresh --full`). */
export function noticeAsksFull(data: Uint8Array): boolean {
  if (data.length === 0 || data.length > 1024) return false;
  try {
    return (JSON.parse(new TextDecoder().decode(data)) as { full?: unknown })?.full === true;
  } catch {
    return false;
  }
}

export interface ServiceDeps {
  readonly config: Config;
  readonly log: Logger;
  /** Owned by the caller, which closes it after the service has stopped. */
  readonly nc: NatsConnection;
  /** Handed to the rule cache, which closes it when it stops. */
  readonly database: RuleDatabase;
  readonly now?: () => Date;
  /** How long one pull request waits on the server (default 5 s; tests use less). */
  readonly pullExpiresMs?: number;
  /** Whether NATS is connected now (readiness); assumed while the connection is open when not given. */
  readonly natsConnected?: () => boolean;
  /** Passed to createActor: the Stately inspector attaches here. */
  readonly inspect?: (event: InspectionEvent) => void;
}

/** The last RECENT_EVENTS rule-cache transitions and errors are kept for the status page. */
export const RECENT_EVENTS = 50;

export interface RunningService extends OpsView {
  readonly actor: ActorRefFrom<typeof serviceMachine>;
  readonly limit: ConcurrencyLimit;
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

  const jsm = await jetstreamManager(nc);
  await ensureTopology(
    jsm,
    {
      inputStream: c.TORT_INPUT_STREAM,
      inputSubjects: c.TORT_INPUT_SUBJECTS.split(","),
      consumer: c.TORT_CONSUMER,
      verdictStream: c.TORT_VERDICT_STREAM,
      verdictSubjectPrefix: c.TORT_VERDICT_SUBJECT_PREFIX,
      deadLetterStream: c.TORT_DEADLETTER_STREAM,
      deadLetterSubject: c.TORT_DEADLETTER_SUBJECT,
      ackWaitMs: c.TORT_ACK_WAIT_MS,
      maxDeliver: c.TORT_MAX_DELIVER,
      duplicateWindowMs: c.TORT_DUPLICATE_WINDOW_MS,
      exhaustedStream: c.TORT_EXHAUSTED_STREAM,
      maxAckPending: c.TORT_MAX_ACK_PENDING,
      replicas: c.TORT_STREAM_REPLICAS,
    },
    log,
  );
  const js = jetstream(nc);
  const exhaustedConsumer = await js.consumers.get(c.TORT_EXHAUSTED_STREAM, c.TORT_CONSUMER);
  const kv = await new Kvm(nc).create(c.TORT_CONFIG_BUCKET, { replicas: c.TORT_STREAM_REPLICAS });
  const fleetOn = c.TORT_FLEET === "on";
  /** The rule tables this instance serves, as announcements name them. */
  const databaseId = databaseIdentity(c.TORT_DEPLOYMENT, c.DATABASE_URL);
  const rulesKv = fleetOn ? await openRulesBucket(nc, c.TORT_RULES_BUCKET, c.TORT_STREAM_REPLICAS) : null;
  const snapshotStore = fleetOn
    ? await openSnapshotStore(nc, c.TORT_SNAPSHOT_BUCKET, { replicas: c.TORT_STREAM_REPLICAS, maxSnapshotBytes: c.TORT_SNAPSHOT_MAX_MB * 2 ** 20 })
    : null;
  /** Registered with the NATS service framework: discovery (`tortmatch fleet`) and the explain endpoint. */
  let instanceStats: () => InstanceStats = () => ({ version: null, state: "", role: "", source: null, current: null, pinned: null, pinIgnored: null, tablesReadable: null, inFlight: 0, limit: 0, loads: 0, fetches: 0 });
  /** Whether this instance can read the rule tables: checked at start, on each notice and every refresh interval, whatever its role. */
  const tables = watchTablesAccess(database, { periodMs: c.TORT_REFRESH_INTERVAL_MS, log });
  /** When a notice reached this instance while it led and no load has finished since (null when none is owed). */
  let noticeOwedSince: number | null = null;
  const svc: Service = await new Svcm(nc).add({
    name: c.TORT_SERVICE_NAME,
    version: TORTMATCH_VERSION,
    description: "matches recognition results against the tort rules",
    metadata: { consumer: c.TORT_CONSUMER, input_stream: c.TORT_INPUT_STREAM },
    queue: c.TORT_CONSUMER,
    statsHandler: async () => instanceStats(),
  });
  const instanceId = svc.info().id;
  const fleetView = createFleetView(nc, { service: c.TORT_SERVICE_NAME, consumer: c.TORT_CONSUMER, periodMs: c.TORT_LAG_POLL_MS });
  let lease: LeaderLease | null = null;
  /** The announcement and the pin as last watched: what a fetched object's bytes must match. */
  let announcement: Announcement | null = null;
  let pin: Pin | null = null;
  const expectedDigest = (version: string) => (announcement?.version === version ? announcement : pin?.version === version ? pin.digest : null);
  /** Versions whose objects were refused, newest last (bounded): each is logged once. */
  const refusedVersions = new Set<string>();
  const noteRefused = (version: string) => {
    refusedVersions.add(version);
    if (refusedVersions.size > 64) refusedVersions.delete(refusedVersions.values().next().value!);
  };

  const stats = createServiceStats();
  const limit = createConcurrencyLimit(c.TORT_CONCURRENCY);
  limit.setCap(c.TORT_WAIT_BUFFER); // until the first snapshot: the wait buffer bounds what is pulled
  const budget = createByteBudget(c.TORT_MAX_INFLIGHT_BYTES);
  /** End-to-end latencies of the status page's current chart interval (bounded reservoir). */
  const latencies = createLatencyWindow();
  const snapshot$ = new BehaviorSubject<RuleSnapshot | null>(null);
  /** Emits when the first load failed: the messages waiting for it go back to JetStream. */
  const giveBack$ = new Subject<void>();
  const loader = createRuleLoader(database, {
    pageSize: c.TORT_LOAD_PAGE_SIZE,
    maxBytes: c.TORT_SNAPSHOT_MAX_MB * 2 ** 20,
    now,
    onMissedRows: (sums) => log.info(sums, "rule rows changed that an incremental read cannot see (deleted outright, or an edit committed long after its mtime); the refresh reads both tables whole"),
    onRowsRead: (rows) => metrics.rowsRead(rows),
  });
  const publisher = createPublisher(nc, {
    subjects: { verdictSubjectPrefix: c.TORT_VERDICT_SUBJECT_PREFIX, deadLetterSubject: c.TORT_DEADLETTER_SUBJECT },
    timeoutMs: c.TORT_PUBLISH_TIMEOUT_MS,
    maxPayload: () => nc.info?.max_payload ?? 1024 * 1024,
    log,
  });
  const settle = {
    publisher,
    finalDelivery: c.TORT_MAX_DELIVER,
    maxPublishAttempts: FINAL_PUBLISH_ATTEMPTS,
    nakDelayMs: c.TORT_NAK_DELAY_MS,
    log,
    // Redeliveries later than the duplicate window ask the verdict stream before publishing.
    lookup: createVerdictLookup(js, { verdictStream: c.TORT_VERDICT_STREAM, maxScan: VERDICT_LOOKUP_MAX_SCAN, log }),
    duplicateWindowMs: c.TORT_DUPLICATE_WINDOW_MS,
    now: () => now().getTime(),
  };

  /** The rule cache's current state name, as last seen (set below once the actor runs). */
  let cacheState = "";
  /** The refresh interval in force, as the rule cache last reported it (live config changes it). */
  let refreshIntervalMs = c.TORT_REFRESH_INTERVAL_MS;
  /** The consumer's lag, once the lag poller runs. */
  let lag: () => ConsumerLag | null = () => null;
  const metrics = createMetrics({
    stats,
    inFlight: () => stats.inFlight,
    limit: () => limit.limit,
    waiting: () => stats.waiting,
    snapshot: () => snapshot$.value,
    ruleCacheState: () => cacheState,
    ruleCacheStates: Object.keys(ruleCacheMachine.config.states ?? {}),
    now: () => now().getTime(),
    lag: () => lag(),
    ready: () => snapshot$.value !== null && (deps.natsConnected?.() ?? !nc.isClosed()),
    refreshIntervalMs: () => refreshIntervalMs,
    fleet: () => instanceStats(),
    confirmedAt: () => confirmedAt(),
    tablesReadable: () => tables.readable(),
  });

  const ruleCache = ruleCacheMachine.provide({
    actors: {
      loadRules: fromPromise<RuleSnapshot, LoadRulesInput>(async ({ input, signal }) => {
        const kind = input.mode === "full" || input.previous === null ? "full" : "incremental";
        const started = performance.now();
        try {
          const snapshot = kind === "full" ? await loader.loadFull({ signal }) : await loader.loadChanges(input.previous!, { signal });
          metrics.ruleLoad(kind, "ok", (performance.now() - started) / 1000);
          tables.noteLoad({ readable: true });
          noticeOwedSince = null;
          return snapshot;
        } catch (err) {
          if (err instanceof SnapshotOverBudgetError) {
            metrics.ruleLoad(kind, "over_budget", (performance.now() - started) / 1000);
            log.error({ loadKind: kind, ...err.rows, estimateMb: Math.round(err.estimateBytes / 2 ** 20), maxMb: c.TORT_SNAPSHOT_MAX_MB }, err.message);
          } else {
            metrics.ruleLoad(kind, "error", (performance.now() - started) / 1000);
            if (err instanceof RuleStoreError) tables.noteLoad({ readable: false, reason: err.message });
            // The cause, at error level, on every attempt (the machine retries with backoff).
            log.error({ err: (err as Error).message, loadKind: kind }, "rule load failed");
          }
          throw err;
        }
      }),
      closeRules: fromPromise<void, void>(async () => {
        // A leader hands the lease back first: a successor need not wait for it to run out.
        await lease?.release();
        await database.close();
      }),
      fetchSnapshot: fromPromise<RuleSnapshot, { version: string }>(async ({ input }) => {
        const started = performance.now();
        try {
          const snapshot = await snapshotStore!.get(input.version, databaseId, expectedDigest(input.version));
          metrics.ruleFetch("ok");
          log.info({ version: input.version, ms: Math.round(performance.now() - started) }, "rule snapshot fetched from the fleet");
          return snapshot;
        } catch (err) {
          // A refused object is logged once per version (an announcement re-written with the same version retries it).
          const refused = err instanceof SnapshotFormatError;
          metrics.ruleFetch(refused ? "refused" : "error");
          if (!refused || !refusedVersions.has(input.version)) {
            log.error({ version: input.version, err: (err as Error).message }, refused ? "rule snapshot refused: it failed its checks and is not served" : "rule snapshot could not be fetched");
          }
          if (refused) noteRefused(input.version);
          throw err;
        }
      }),
      publishSnapshot: fromPromise<void, { snapshot: RuleSnapshot }>(async ({ input }) => {
        const started = performance.now();
        try {
          let made: Announcement;
          let stored: unknown = null;
          try {
            made = await snapshotStore!.put(input.snapshot, instanceId, databaseId);
          } catch (err) {
            // Announced all the same: the followers learn that the rules changed, fail to fetch them, and read the tables.
            stored = err;
            const s = input.snapshot;
            made = { version: s.version, object: "", sha256: "", bytes: 0, rows: snapshotRows(s), builtAt: new Date().toISOString(), builtBy: instanceId, database: databaseId };
          }
          made = { ...made, confirmedAt: now().toISOString() };
          // A leader that lost the lease meanwhile leaves the announcing to its successor (see announce()).
          if (lease === null) throw new Error("no lease: not leading");
          await announce(rulesKv!, lease, made);
          if (stored !== null) throw new Error(`the snapshot could not be stored (announced without it): ${(stored as Error).message}`);
          metrics.rulePublish("ok");
          log.info({ version: made.version, bytes: made.bytes, ms: Math.round(performance.now() - started) }, "rule snapshot published to the fleet");
          const pinned = cache.getSnapshot().context.pinned;
          const pruned = await snapshotStore!.prune(c.TORT_SNAPSHOT_KEEP, [made.version, pinned]);
          if (pruned.length > 0) log.info({ pruned, keep: c.TORT_SNAPSHOT_KEEP }, "old rule snapshots deleted");
        } catch (err) {
          metrics.rulePublish("error");
          log.error({ version: input.snapshot.version, err: (err as Error).message }, "rule snapshot could not be published; followers fall back to the rule tables");
          throw err;
        }
      }),
      fleet: fromCallback(({ sendBack }) => {
        if (rulesKv === null) return;
        const held = startLeaderLease(rulesKv, {
          holder: instanceId,
          leaseMs: c.TORT_LEASE_MS,
          log,
          onRole: (role) => {
            noticeOwedSince = null;
            sendBack({ type: "FLEET.ROLE", role });
          },
          // Leading means producing versions: reading the tables, and answering a notice within a lease.
          canLead: () => tables.readable() !== false && (noticeOwedSince === null || now().getTime() - noticeOwedSince <= c.TORT_LEASE_MS),
          othersCanLead: async () =>
            (await discoverFleet(nc, { service: c.TORT_SERVICE_NAME, consumer: c.TORT_CONSUMER, maxWaitMs: Math.min(2_000, c.TORT_LEASE_MS / 3) })).some((i) => i.id !== instanceId && i.tablesReadable === true),
        });
        lease = held;
        const watch = watchFleetKeys(
          rulesKv,
          {
            current: (a) => {
              if (a !== null && a.database !== databaseId) {
                // Another deployment's rules in our bucket: never served. This instance works alone from
                // now on (reads its own tables, refreshes itself) and stops contending for the lease.
                log.error(
                  { version: a.version, builtBy: a.builtBy, theirDatabase: a.database, ourDatabase: databaseId, bucket: c.TORT_RULES_BUCKET },
                  "a rules announcement from other rule tables (another deployment shares this bucket): this instance leaves the fleet and reads its own tables; give each deployment its own TORT_RULES_BUCKET and TORT_SNAPSHOT_BUCKET",
                );
                void held.release();
                sendBack({ type: "FLEET.ISOLATE" });
                return;
              }
              announcement = a;
              sendBack({ type: "FLEET.CURRENT", version: a?.version ?? null });
            },
            pinned: (p) => {
              pin = p;
              log.info({ pinned: p?.version ?? null }, p === null ? "no rules version pinned" : "rules version pinned for the fleet");
              sendBack({ type: "FLEET.PINNED", version: p?.version ?? null });
            },
          },
          log,
        );
        return () => {
          watch.stop();
          void held.release();
        };
      }),
    },
  });

  const machine = serviceMachine.provide({
    actors: {
      ruleCache,
      configWatcher: fromCallback(({ sendBack }) => {
        const watcher = watchLiveConfig(
          kv,
          { concurrency: c.TORT_CONCURRENCY, refresh_interval_ms: c.TORT_REFRESH_INTERVAL_MS },
          (change) =>
            sendBack(change.key === "concurrency" ? { type: "CONFIG.CONCURRENCY", value: change.value } : { type: "CONFIG.REFRESH_INTERVAL", ms: change.value }),
          log,
        );
        return () => watcher.stop();
      }),
      changeNotices: fromCallback(({ sendBack }) => {
        const sub = nc.subscribe(c.TORT_RULES_CHANGED_SUBJECT, {
          callback: (_err, msg) => {
            if (lease?.isLeader() && noticeOwedSince === null) noticeOwedSince = now().getTime();
            void tables.check();
            sendBack({ type: "RULES.CHANGED", full: noticeAsksFull(msg.data) });
          },
        });
        return () => sub.unsubscribe();
      }),
      consumer: fromCallback(({ sendBack, receive }) => {
        const pipeline = runPipeline({
          source: { nc, stream: c.TORT_INPUT_STREAM, consumer: c.TORT_CONSUMER },
          limit,
          budget,
          snapshot$,
          giveBack$,
          stats,
          pull: { maxBatch: c.TORT_PULL_BATCH, expiresMs: deps.pullExpiresMs ?? 5_000, retryDelayMs: 1_000 },
          settle,
          waitBuffer: c.TORT_WAIT_BUFFER,
          ackWaitMs: c.TORT_ACK_WAIT_MS,
          now,
          onMatched: metrics.matched,
          log,
          onSettled: (settled, msg) => {
            const endToEnd = Math.max(0, now().getTime() - msg.info.timestampNanos / 1e6) / 1000;
            metrics.settledAfter(endToEnd);
            latencies.observe(endToEnd);
          },
        });
        pipeline.done.catch((err: unknown) => sendBack({ type: "CONSUMER.FAILED", error: String((err as Error)?.message ?? err) }));
        receive((event) => {
          if (event.type === "DRAIN") void pipeline.drain().then(() => sendBack({ type: "CONSUMER.DRAINED" }));
          if (event.type === "CONFIG.CONCURRENCY") limit.setLimit(event.value);
        });
      }),
      exhaustedWorker: fromCallback(() => {
        const worker = startExhaustedWorker({
          consumer: exhaustedConsumer,
          jsm,
          inputStream: c.TORT_INPUT_STREAM,
          snapshot: () => snapshot$.value,
          settle,
          retryDelayMs: Math.max(c.TORT_NAK_DELAY_MS, 1_000),
          now,
          log,
          onSettled: (settled) => stats.exhaustedSettled(settled.outcome, settled.deadLetter),
          maxDeliver: EXHAUSTED_MAX_DELIVER,
          onGaveUp: () => stats.exhaustedGaveUp(),
        });
        return () => void worker.stop();
      }),
      explainEndpoint: fromCallback(() => {
        // One instance of the queue group answers each request, with the snapshot it serves.
        // The service's own metadata is frozen by the framework; the endpoint's is read when an INFO is
        // answered, so its getters make `$SRV.INFO` carry the live state too (as the stats do).
        const live = (read: (s: InstanceStats) => string | number | null) => String(read(instanceStats()) ?? "");
        const metadata = {
          get version() { return live((s) => s.version); },
          get state() { return live((s) => s.state); },
          get role() { return live((s) => s.role); },
          get in_flight() { return live((s) => s.inFlight); },
          get limit() { return live((s) => s.limit); },
        } as unknown as Record<string, string>;
        const explainer = createExplainQueue({ snapshot: () => snapshot$.value, maxReplyBytes: () => nc.info?.max_payload ?? 1024 * 1024 });
        const endpoint = svc.addEndpoint("explain", {
          subject: c.TORT_EXPLAIN_SUBJECT,
          queue: c.TORT_CONSUMER,
          metadata,
          handler: (_err, msg) => {
            if (msg.reply) explainer.ask(msg.data, (reply) => msg.respond(reply));
          },
        });
        return () => {
          explainer.stop();
          void endpoint.stop();
        };
      }),
      lagPoller: fromCallback(() => {
        const poller = pollConsumerLag(jsm, c.TORT_INPUT_STREAM, c.TORT_CONSUMER, c.TORT_LAG_POLL_MS, log, () => now().getTime());
        lag = poller.latest;
        return () => poller.stop();
      }),
    },
  });

  const actor = createActor(machine, {
    input: {
      ruleCache: {
        refreshIntervalMs: c.TORT_REFRESH_INTERVAL_MS,
        fullReloadEvery: c.TORT_FULL_RELOAD_EVERY,
        retryBaseMs: c.TORT_RETRY_BASE_MS,
        retryMaxMs: c.TORT_RETRY_MAX_MS,
        minRefreshGapMs: c.TORT_MIN_REFRESH_GAP_MS,
        fleet: fleetOn,
        leaderWaitMs: c.TORT_LEADER_WAIT_MS,
      },
      drainTimeoutMs: c.TORT_SHUTDOWN_TIMEOUT_MS,
    },
    ...(deps.inspect ? { inspect: deps.inspect } : {}),
  });

  // Follow the rule cache: publish each new snapshot to the pipeline, log its transitions.
  const transitions: ServiceEventRecord[] = [];
  const errors: ServiceEventRecord[] = [];
  const remember = (list: ServiceEventRecord[], record: ServiceEventRecord) => {
    list.push(record);
    if (list.length > RECENT_EVENTS) list.shift();
  };
  let lastAttempt = 0;
  let givenBack = false;
  let pinIgnored: string | null = null;
  let latestRead: RuleSnapshot | null = null;
  const skippedRows = createSkippedRowsReporter(log);
  actor.start();
  const cache = actor.system.get("ruleCache") as ActorRefFrom<typeof ruleCacheMachine>;
  const follow = (s: ReturnType<typeof cache.getSnapshot>) => {
    const state = String(s.value);
    const ctx = s.context;
    refreshIntervalMs = ctx.refreshIntervalMs;
    if (ctx.snapshot !== snapshot$.value && ctx.snapshot !== null) {
      const first = snapshot$.value === null;
      if (first) {
        const warm = warmUpStages(ctx.snapshot);
        log.debug({ iterations: warm.iterations, hits: warm.hits, invalid: warm.invalid, ms: Math.round(warm.ms) }, "per-message stages warmed up");
      }
      snapshot$.next(ctx.snapshot);
      if (first) limit.setCap(null);
      log.info({ version: ctx.version, loadKind: ctx.snapshot.loadKind, loads: ctx.loads, ...ctx.snapshot.counts }, "rule snapshot in service");
      skippedRows.report(ctx.snapshot);
    }
    if (ctx.attempt > lastAttempt && ctx.lastError !== null) {
      remember(errors, { at: now().toISOString(), state, detail: `attempt ${ctx.attempt}: ${ctx.lastError}` });
      if (snapshot$.value === null && !givenBack) {
        // The first load failed: hold nothing while retrying. Messages waiting for it go back to
        // JetStream (healthy instances on the consumer take them), and nothing more is pulled
        // until a snapshot exists.
        givenBack = true;
        limit.setCap(0);
        giveBack$.next();
        log.warn({ attempt: ctx.attempt }, "first rule load failed: waiting messages handed back, pulling nothing until rules are loaded");
      }
    }
    lastAttempt = ctx.attempt;
    if (ctx.pinIgnored !== pinIgnored) {
      pinIgnored = ctx.pinIgnored;
      if (pinIgnored !== null) {
        log.error({ pinned: pinIgnored, serving: ctx.version, reason: ctx.lastError }, "the pinned rules version cannot be served: ignored, this instance serves the current rules as if unpinned; `tortmatch rules unpin`, or pin a version `tortmatch rules versions` lists");
        remember(errors, { at: now().toISOString(), state, detail: ctx.lastError ?? `pinned ${pinIgnored} ignored` });
      }
    }
    if (ctx.latest !== latestRead) {
      latestRead = ctx.latest;
      // A leader's read that changed nothing renews the announcement's confirmation: followers' snapshot age is the fleet's.
      if (latestRead !== null && ctx.role === "leader" && lease !== null && announcement !== null && announcement.version === latestRead.version) {
        const confirmed = { ...announcement, confirmedAt: latestRead.loadedAt };
        announce(rulesKv!, lease, confirmed).catch((err: unknown) => log.debug({ err: (err as Error).message }, "rules announcement not confirmed (the next read retries)"));
      }
    }
    if (state !== cacheState) {
      cacheState = state;
      remember(transitions, { at: now().toISOString(), state, ...(ctx.version ? { detail: ctx.version } : {}) });
      const level = state === "retrying" ? "warn" : "info";
      log[level]({ ruleCache: state, attempt: ctx.attempt, lastError: ctx.lastError ?? undefined }, "rule cache state");
    }
  };
  instanceStats = () => {
    const ctx = cache.getSnapshot().context;
    return {
      version: ctx.version,
      state: cacheState,
      role: ctx.role,
      source: ctx.source,
      current: ctx.announced,
      pinned: ctx.pinned,
      pinIgnored: ctx.pinIgnored,
      tablesReadable: tables.readable(),
      inFlight: stats.inFlight,
      limit: limit.limit,
      loads: ctx.loads,
      fetches: ctx.fetches,
    };
  };
  /** When this instance last confirmed it serves the tables' newest content (see tortmatch_snapshot_age_seconds). */
  let confirmedMs: number | null = null;
  const confirmedAt = (): number | null => {
    const ctx = cache.getSnapshot().context;
    const t = now().getTime();
    let seen: number | null = null;
    if (ctx.source === "fleet") {
      // Served from the fleet: confirmed when the leader last found this content in the tables (a pin in force counts as the fleet's choice).
      const servesFleet = announcement !== null && (announcement.version === ctx.version || (ctx.pinned !== null && ctx.pinned !== ctx.pinIgnored));
      if (servesFleet) seen = Date.parse(announcement!.confirmedAt ?? announcement!.builtAt);
    } else if (ctx.latest !== null) {
      seen = Date.parse(ctx.latest.loadedAt);
    }
    // Read from NATS, so never trusted to lie ahead of this clock.
    if (seen !== null && Number.isFinite(seen)) confirmedMs = Math.max(confirmedMs ?? 0, Math.min(seen, t));
    return confirmedMs;
  };
  cache.subscribe(follow);
  follow(cache.getSnapshot()); // the state it is already in

  const stopped = toPromise(actor).then(async () => {
    // Every actor has stopped: the pipeline has drained (or given up at the shutdown timeout) and the
    // exhausted-deliveries worker with it, so no settlement is waiting for a PubAck any more.
    publisher.close();
    tables.stop();
    await svc.stop().catch(() => {});
    return actor.getSnapshot().context.failure;
  });
  return {
    actor,
    stats,
    limit,
    budget,
    latencies,
    snapshot$,
    metrics,
    ruleCacheState: () => cacheState,
    ruleCache: () => actor.system.get("ruleCache")?.getSnapshot().context,
    instanceId,
    instanceStats: () => instanceStats(),
    snapshotConfirmedAt: () => confirmedAt(),
    tablesAccess: () => ({ readable: tables.readable(), reason: tables.reason() }),
    fleetInstances: () => fleetView.latest(),
    consumerLag: () => lag(),
    recent: { transitions, errors },
    stopped,
    async stop() {
      actor.send({ type: "STOP" });
      return stopped;
    },
  };
}
