/**
 * The port through which ops sees a running service: what the status page, /metrics and the
 * history read, and nothing else. ops defines it and never imports the service; the service
 * (src/service.ts) satisfies it.
 */
import type { Registry } from "prom-client";
import type { RuleCacheContext } from "../../machines/rule-cache.machine.js";
import type { FleetInstance } from "../fleet/discover-fleet.js";
import type { ConsumerLag } from "../ingest/consumer-lag.js";
import type { ConcurrencyView } from "../gate/concurrency-control.js";
import type { RuleSnapshot } from "../match/snapshot.js";
import type { LatencyWindow } from "./history.js";
import type { ServiceStats } from "./service-stats.js";

/** A rule-cache transition or error, kept for the status page. */
export interface ServiceEventRecord {
  readonly at: string;
  readonly state: string;
  readonly detail?: string;
}

export interface OpsView {
  /** The instance's one count of its messages. */
  readonly stats: ServiceStats;
  readonly limit: { readonly limit: number };
  /** Who sets the limit (a number, or `auto`) and what the adaptive limiter measured. */
  readonly concurrency: { view(): ConcurrencyView };
  /** End-to-end latencies since the last chart sample. */
  readonly latencies: LatencyWindow;
  readonly snapshot$: { readonly value: RuleSnapshot | null };
  readonly metrics: { readonly registry: Registry };
  /** The durable consumer's last lag reading. */
  consumerLag(): ConsumerLag | null;
  /** The rule cache's current state name, and its context (undefined once it has stopped). */
  ruleCacheState(): string;
  ruleCache(): RuleCacheContext | undefined;
  /** This instance's id in the fleet (its NATS service id). */
  readonly instanceId: string;
  /** When this instance last confirmed it serves the tables' newest content, epoch ms. */
  snapshotConfirmedAt(): number | null;
  /** Whether this instance can read the rule tables (null before its first check), and why not. */
  tablesAccess(): { readonly readable: boolean | null; readonly reason: string | null };
  /** The instances on this consumer as last discovered. */
  fleetInstances(): readonly FleetInstance[];
  /**
   * Recent rule-cache transitions and errors, newest last (bounded). Routine refreshes (timed, that
   * changed nothing) are not transitions: they are counted in `quietRefreshes`.
   */
  readonly recent: {
    readonly transitions: readonly ServiceEventRecord[];
    readonly errors: readonly ServiceEventRecord[];
    readonly quietRefreshes: { readonly count: number; readonly lastAt: string | null };
  };
}
