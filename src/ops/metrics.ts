/**
 * Prometheus metrics (prom-client), registered in a registry of their own.
 * What ServiceStats counts (outcomes, verdicts, dead letters, exhausted
 * deliveries) is copied from it when scraped, never counted twice; the gauges
 * are read from the live objects when scraped; the rule loads, fetches and
 * publishes and the two histograms are fed as things happen.
 */
import { getHeapStatistics } from "node:v8";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { RuleSnapshot } from "../match/snapshot.js";
import type { ConsumerLag } from "../ingest/consumer-lag.js";
import type { ConcurrencyView } from "../gate/concurrency-control.js";
import { DEAD_LETTER_CLASSES } from "../verdict/decide-settlement.js";
import { createBucketHistogram } from "./bucket-histogram.js";
import { OUTCOMES, type ServiceStats } from "./service-stats.js";
import { VERDICT_ACTIONS } from "../match/types.js";

export interface MetricsSources {
  /** The pipeline's own counts of settlements, by outcome and by verdict action: the counters read them when scraped. */
  readonly stats: Pick<ServiceStats, "outcomes" | "verdicts" | "deadLetters" | "exhausted" | "givenUp">;
  readonly inFlight: () => number;
  readonly limit: () => number;
  /** Who sets the limit and what the adaptive limiter measured (spec section 13). */
  readonly concurrency?: () => ConcurrencyView;
  readonly waiting: () => number;
  readonly snapshot: () => RuleSnapshot | null;
  readonly ruleCacheState: () => string;
  readonly ruleCacheStates: readonly string[];
  readonly now: () => number;
  /** The consumer's last lag reading. */
  readonly lag?: () => ConsumerLag | null;
  /** Ready: a snapshot loaded and NATS connected (what /readyz says). */
  readonly ready?: () => boolean;
  /** The refresh interval in force, ms (0 = off). */
  readonly refreshIntervalMs?: () => number;
  /** The fleet's view of the rules (spec section 9). */
  readonly fleet?: () => FleetView;
  /** When this instance last confirmed it serves the tables' newest content, epoch ms (the snapshot's load time when not given). */
  readonly confirmedAt?: () => number | null;
  /** Whether this instance can read the rule tables (null before the first check). */
  readonly tablesReadable?: () => boolean | null;
}

/** What an instance knows of the fleet's rules. */
export interface FleetView {
  readonly role: string;
  /** The version this instance serves. */
  readonly version: string | null;
  /** The version announced as `current`. */
  readonly current: string | null;
  readonly pinned: string | null;
  /** The pinned version when it cannot be served and is ignored (spec section 9), else null. */
  readonly pinIgnored: string | null;
  /** Where the served snapshot came from: database or fleet. */
  readonly source: string | null;
}

let processRegistry: Registry | undefined;

/**
 * The process's own metrics (tortmatch_process_cpu_seconds_total, tortmatch_nodejs_heap_size_used_bytes,
 * …), collected once per process: prom-client's collector keeps a GC observer that is never
 * disconnected, so a registry given to it stays reachable for the life of the process. Kept apart
 * from a service's registry, it cannot keep a stopped service's metrics (and through their collect
 * functions, its rule snapshot) alive when a process starts several services (tests, benchmarks).
 */
function processMetrics(): Registry {
  if (processRegistry === undefined) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry, prefix: "tortmatch_" });
  }
  return processRegistry;
}

/** Metric makers bound to one registry. */
function metricKit(registry: Registry) {
  /** A counter with one label, every value of which is exported from the start at 0 (a rate() over a series that appears late misses its first increase). */
  const labelledCounter = <L extends string>(name: string, help: string, label: L, values: readonly string[]) => {
    const counter = new Counter<L>({ name, help, labelNames: [label], registers: [registry] });
    for (const value of values) counter.inc({ [label]: value } as Partial<Record<L, string>>, 0);
    return counter;
  };
  /**
   * A counter of what the pipeline counts already (ServiceStats), copied from it when scraped rather
   * than incremented a second time per message (prom-client hashes the labels on every inc).
   */
  const mirroredCounter = <L extends string>(name: string, help: string, label: L, values: readonly string[], read: () => Readonly<Record<string, number>>) =>
    new Counter<L>({
      name,
      help,
      labelNames: [label],
      registers: [registry],
      collect() {
        const counts = read();
        this.reset();
        for (const value of values) this.inc({ [label]: value } as Partial<Record<L, string>>, counts[value] ?? 0);
      },
    });
  const gauge = (name: string, help: string, read: () => number) =>
    new Gauge({ name, help, registers: [registry], collect() { this.set(read()); } });
  return { labelledCounter, mirroredCounter, gauge };
}
type Kit = ReturnType<typeof metricKit>;

/** The adaptive limiter's measurements (absent while the limit is a fixed number). */
function adaptiveMetrics(registry: Registry, gauge: Kit["gauge"], view: () => ConcurrencyView) {
  gauge("tortmatch_concurrency_adaptive", "1 when the adaptive limiter sets the concurrency limit (`auto`), 0 when a number does", () => (view().mode === "auto" ? 1 : 0));
  const seconds = (name: string, help: string, pick: (v: ConcurrencyView) => number | null | undefined) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        const ms = pick(view());
        if (ms === null || ms === undefined) this.reset();
        else this.set(ms / 1000);
      },
    });
  seconds("tortmatch_concurrency_min_rtt_seconds", "With `auto`: the measured minimum time from pull to PubAck (probed at the lowest limit)", (v) => v.minRttMs);
  seconds("tortmatch_concurrency_rtt_seconds", "With `auto`: the last window's median time from pull to PubAck (the current sample)", (v) => v.sampleMs);
  gauge("tortmatch_heap_limit_bytes", "V8's heap limit (`heap_size_limit`: --max-old-space-size or the container's), which the adaptive limit keeps the heap away from", () => getHeapStatistics().heap_size_limit);
  gauge("tortmatch_concurrency_pressure", "With `auto`: memory pressure on the limit, 0..1 (the larger of the V8 heap's and the held message bytes')", () => view().pressure ?? 0);
}

/** What happens to messages: outcomes, verdicts, dead letters, exhausted deliveries, the flow's gauges and the consumer's lag. */
function messageMetrics(registry: Registry, { mirroredCounter, gauge }: Kit, sources: MetricsSources) {
  mirroredCounter("tortmatch_messages_total", "Messages settled, by outcome", "outcome", OUTCOMES, () => sources.stats.outcomes);
  mirroredCounter("tortmatch_verdicts_total", "Verdicts published, by action", "action", VERDICT_ACTIONS, () => sources.stats.verdicts);
  mirroredCounter(
    "tortmatch_exhausted_total",
    "Inputs whose deliveries ran out unsettled, settled by the exhausted-deliveries worker, by outcome",
    "outcome",
    OUTCOMES,
    () => sources.stats.exhausted,
  );
  mirroredCounter("tortmatch_dead_letters_total", "Dead letters written, by class of reason", "reason", DEAD_LETTER_CLASSES, () => sources.stats.deadLetters);
  new Counter({
    name: "tortmatch_exhausted_given_up_total",
    help: "Inputs whose deliveries ran out and that the exhausted-deliveries worker could not settle either, after its own last delivery: no verdict, no dead letter (each logged at error level with its stream sequence)",
    registers: [registry],
    collect() {
      this.reset();
      this.inc(sources.stats.givenUp);
    },
  });
  if (sources.ready) gauge("tortmatch_ready", "1 when a rule snapshot is loaded and NATS is connected (as /readyz), else 0", () => (sources.ready!() ? 1 : 0));
  gauge("tortmatch_in_flight", "Messages between pull and settlement", sources.inFlight);
  gauge("tortmatch_concurrency_limit", "The concurrency limit in use: the configured number, or the adaptive limiter's (KV `concurrency: auto`)", sources.limit);
  if (sources.concurrency) adaptiveMetrics(registry, gauge, sources.concurrency);
  gauge("tortmatch_waiting", "Messages waiting for the first rule snapshot", sources.waiting);
  const lagGauge = (name: string, help: string, pick: (lag: ConsumerLag) => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        const lag = sources.lag?.();
        if (lag) this.set(pick(lag));
      },
    });
  lagGauge("tortmatch_consumer_pending_messages", "Messages in the input stream not yet delivered to the durable consumer (read every TORT_LAG_POLL_MS)", (l) => l.pending);
  lagGauge("tortmatch_consumer_ack_pending_messages", "Messages delivered to the durable consumer and not yet acknowledged, across every instance", (l) => l.ackPending);
  lagGauge("tortmatch_consumer_redelivered_messages", "Messages delivered more than once and not yet acknowledged", (l) => l.redelivered);
  // The two observed per message: bucket histograms (prom-client's own per call costs ~0.4 µs).
  const matchSeconds = createBucketHistogram({
    name: "tortmatch_match_seconds",
    help: "Time to decode and match one result",
    buckets: [1e-6, 5e-6, 1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 1e-2],
    registers: [registry],
  });
  const endToEnd = createBucketHistogram({
    name: "tortmatch_end_to_end_seconds",
    help: "From the message's arrival in the input stream to its settlement",
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120],
    registers: [registry],
  });
  return { matchSeconds, endToEnd };
}

/** The rule cache: its state, loads, fetches and publishes, the snapshot's age and rows, the tables' readability. */
function ruleMetrics(registry: Registry, { labelledCounter, gauge }: Kit, sources: MetricsSources) {
  new Gauge({
    name: "tortmatch_rule_cache_state",
    help: "1 for the rule cache's current state, 0 for the others",
    labelNames: ["state"],
    registers: [registry],
    collect() {
      const current = sources.ruleCacheState();
      for (const state of sources.ruleCacheStates) this.set({ state }, state === current ? 1 : 0);
    },
  });
  const loads = new Counter({ name: "tortmatch_rule_loads_total", help: "Rule loads, by kind and result", labelNames: ["kind", "result"], registers: [registry] });
  const loadSeconds = new Histogram({
    name: "tortmatch_rule_load_seconds",
    help: "Rule load duration, by kind",
    labelNames: ["kind"],
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  for (const kind of ["full", "incremental"]) for (const result of ["ok", "error", "over_budget"]) loads.inc({ kind, result }, 0);
  new Gauge({
    name: "tortmatch_snapshot_age_seconds",
    help: "Seconds since this instance last confirmed it serves the rule tables' newest content (a leader or lone instance by reading them; a follower by its leader's confirmation): it grows while refreshes fail",
    registers: [registry],
    collect() {
      const s = sources.snapshot();
      if (s === null) return;
      const confirmed = sources.confirmedAt?.() ?? Date.parse(s.loadedAt);
      this.set(Math.max(0, sources.now() - confirmed) / 1000);
    },
  });
  new Gauge({
    name: "tortmatch_snapshot_rows",
    help: "Rows in the rule snapshot, by kind",
    labelNames: ["kind"],
    registers: [registry],
    collect() {
      const s = sources.snapshot();
      if (s === null) return;
      this.set({ kind: "rules" }, s.counts.ruleRows);
      this.set({ kind: "properties" }, s.counts.propertyRows);
      this.set({ kind: "active_rules" }, s.counts.activeRules);
    },
  });
  new Gauge({
    name: "tortmatch_skipped_rows",
    help: "Rows of the last load skipped because they break the contract, by table",
    labelNames: ["table"],
    registers: [registry],
    collect() {
      const s = sources.snapshot();
      if (s === null) return;
      this.set({ table: "video_tort_rule" }, s.counts.skippedRules);
      this.set({ table: "video_tort_rule_property" }, s.counts.skippedProperties);
    },
  });
  if (sources.refreshIntervalMs) gauge("tortmatch_refresh_interval_seconds", "The timer refresh interval in force (0 = off)", () => sources.refreshIntervalMs!() / 1000);
  const rowsRead = new Counter({ name: "tortmatch_rule_rows_read_total", help: "Rows read from the rule tables by this instance (a follower in a fleet reads none)", registers: [registry] });
  const fetches = labelledCounter("tortmatch_rule_fetches_total", "Rule snapshots fetched from the fleet's snapshot store, by result (refused: the object failed its checks)", "result", ["ok", "error", "refused"]);
  const publishes = labelledCounter("tortmatch_rule_publishes_total", "Rule snapshots this instance published for the fleet, by result", "result", ["ok", "error"]);
  if (sources.tablesReadable) {
    const readable = sources.tablesReadable;
    gauge("tortmatch_rule_tables_readable", "1 when this instance can read the rule tables (checked at start, on each notice and refresh, and by every load), 0 when it cannot", () => (readable() === false ? 0 : 1));
  }
  return { loads, loadSeconds, rowsRead, fetches, publishes };
}

/** The fleet's rules as this instance sees them (spec section 9). */
function fleetMetrics(registry: Registry, { gauge }: Kit, fleet: () => FleetView) {
  new Gauge({
    name: "tortmatch_rules_info",
    help: "1, labelled with this instance's fleet role and the rules version it serves, the announced (current) and the pinned one",
    labelNames: ["role", "served", "current", "pinned", "source"],
    registers: [registry],
    collect() {
      const f = fleet();
      this.reset();
      this.set({ role: f.role, served: f.version ?? "", current: f.current ?? "", pinned: f.pinned ?? "", source: f.source ?? "" }, 1);
    },
  });
  gauge("tortmatch_rules_pinned", "1 while a rules version is pinned for the fleet, else 0", () => (fleet().pinned !== null ? 1 : 0));
  gauge("tortmatch_rules_pin_ignored", "1 while the pinned rules version cannot be served (absent, damaged, another deployment's, over the memory budget) and is ignored, else 0", () => (fleet().pinIgnored !== null ? 1 : 0));
  gauge("tortmatch_rules_serving_current", "1 when this instance serves the version its fleet wants (the pinned one unless it is ignored, else the current one), else 0", () => {
    const f = fleet();
    const pin = f.pinned !== null && f.pinned !== f.pinIgnored ? f.pinned : null;
    return f.version !== null && f.version === (pin ?? f.current ?? f.version) ? 1 : 0;
  });
}

export function createMetrics(sources: MetricsSources) {
  const registry = new Registry();
  const kit = metricKit(registry);
  const { matchSeconds, endToEnd } = messageMetrics(registry, kit, sources);
  const { loads, loadSeconds, rowsRead, fetches, publishes } = ruleMetrics(registry, kit, sources);
  if (sources.fleet) fleetMetrics(registry, kit, sources.fleet);
  return {
    /** What /metrics serves: the process's metrics and this service's. */
    registry: Registry.merge([processMetrics(), registry]),
    /** A message settled this long after it was stored in the input stream (its outcome is counted by ServiceStats). */
    settledAfter: (endToEndSeconds: number) => endToEnd.observe(endToEndSeconds),
    matched: (seconds: number) => matchSeconds.observe(seconds),
    rowsRead: (rows: number) => rowsRead.inc(rows),
    ruleFetch: (result: "ok" | "error" | "refused") => fetches.inc({ result }),
    rulePublish: (result: "ok" | "error") => publishes.inc({ result }),
    ruleLoad(kind: "full" | "incremental", result: "ok" | "error" | "over_budget", seconds: number) {
      loads.inc({ kind, result });
      loadSeconds.observe({ kind }, seconds);
    },
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
