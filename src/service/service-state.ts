/**
 * The service's read model: what the rule cache last reported (its state and context), the refresh
 * interval in force and the consumer's lag. Written by one follower each (followRuleCache, the lag
 * poller), read by metrics, the fleet's stats and the status page. Also what the instance reports
 * of itself, and how fresh its rules are known to be.
 */
import type { RuleCacheContext } from "../../machines/rule-cache.machine.js";
import type { InstanceStats } from "../fleet/discover-fleet.js";
import type { ConsumerLag } from "../ingest/consumer-lag.js";
import type { TablesAccess } from "../rules/check-tables.js";
import type { FleetLink } from "./fleet-link.js";

export interface ServiceState {
  /** The rule cache's state name and context, as last seen ("" and null before it starts). */
  cacheState: string;
  cache: RuleCacheContext | null;
  /** The refresh interval in force, as the rule cache last reported it (live config changes it). */
  refreshIntervalMs: number;
  /** The consumer's lag, as the lag poller last read it. */
  lag: () => ConsumerLag | null;
  /** Rule-change notices received (a refresh that follows one is an event, not routine). */
  notices: number;
}

export const createServiceState = (refreshIntervalMs: number): ServiceState => ({ cacheState: "", cache: null, refreshIntervalMs, lag: () => null, notices: 0 });

/** What this instance reports of itself to the fleet (its service stats, `tortmatch fleet`, the status page). */
const roundMs = (ms: number | null | undefined) => (ms === null || ms === undefined ? null : Math.round(ms * 1000) / 1000);

export function instanceStats(
  state: ServiceState,
  tables: TablesAccess,
  flow: { inFlight: number; limit: number; mode: "auto" | "fixed"; minRttMs?: number | null; sampleMs?: number | null },
): InstanceStats {
  const ctx = state.cache;
  return {
    version: ctx?.version ?? null,
    state: state.cacheState,
    role: ctx?.role ?? "",
    source: ctx?.source ?? null,
    current: ctx?.announced ?? null,
    pinned: ctx?.pinned ?? null,
    pinIgnored: ctx?.pinIgnored ?? null,
    tablesReadable: tables.readable(),
    inFlight: flow.inFlight,
    limit: flow.limit,
    mode: flow.mode,
    minRttMs: roundMs(flow.minRttMs),
    rttMs: roundMs(flow.sampleMs),
    loads: ctx?.loads ?? 0,
    fetches: ctx?.fetches ?? 0,
  };
}

/**
 * When this instance last confirmed it serves the tables' newest content, epoch ms (see
 * tortmatch_snapshot_age_seconds): a reader by its own reads, a follower by its leader's
 * confirmation. Never moves back, and never trusts a time from NATS ahead of this clock.
 */
export function confirmationClock(state: ServiceState, link: FleetLink, now: () => number): () => number | null {
  let confirmedMs: number | null = null;
  return () => {
    const ctx = state.cache;
    if (ctx === null) return confirmedMs;
    let seen: number | null = null;
    const a = link.announcement;
    if (ctx.source === "fleet") {
      // Served from the fleet: confirmed when the leader last found this content in the tables (a pin in force counts as the fleet's choice).
      const servesFleet = a !== null && (a.version === ctx.version || (ctx.pinned !== null && ctx.pinned !== ctx.pinIgnored));
      if (servesFleet) seen = Date.parse(a.confirmedAt ?? a.builtAt);
    } else if (ctx.latest !== null) {
      seen = Date.parse(ctx.latest.loadedAt);
    }
    if (seen !== null && Number.isFinite(seen)) confirmedMs = Math.max(confirmedMs ?? 0, Math.min(seen, now()));
    return confirmedMs;
  };
}
