/** What the status page and /status.json show: one plain, secret-free object. */
import { ruleCacheMachine } from "../../machines/rule-cache.machine.js";
import { VERDICT_ACTIONS } from "../match/types.js";
import type { OpsView } from "./ops-view.js";

/** The rule-cache state chart as boxes and arrows (read from the machine definition). */
export function ruleCacheChart(): { states: string[]; transitions: { from: string; to: string; event: string }[] } {
  const states = ruleCacheMachine.root.states;
  const transitions: { from: string; to: string; event: string }[] = [];
  for (const [name, node] of Object.entries(states)) {
    for (const [event, list] of node.transitions) {
      for (const t of list) for (const target of t.target ?? []) transitions.push({ from: name, to: target.key, event: event.replace(/^xstate\.after\.(\w+)\..*$/, "after $1").replace(/^xstate\.(done|error)\.actor\..*$/, "$1") });
    }
    for (const t of node.always ?? []) for (const target of t.target ?? []) transitions.push({ from: name, to: target.key, event: "always" });
  }
  // STOP is handled at the root: every state can stop.
  for (const name of Object.keys(states)) if (name !== "stopping" && name !== "stopped") transitions.push({ from: name, to: "stopping", event: "STOP" });
  return { states: Object.keys(states), transitions };
}

export interface StatusInput {
  readonly service: OpsView;
  readonly natsConnected: () => boolean;
  readonly config: Record<string, unknown>;
  readonly startedAt: number;
  /** Results settled per second over the last few seconds. */
  readonly throughput: () => number;
  readonly inspector: string | null;
}

export function currentStatus(input: StatusInput) {
  const { service } = input;
  const snapshot = service.snapshot$.value;
  const cache = service.ruleCache();
  const o = service.stats.outcomes;
  return {
    at: new Date().toISOString(),
    uptimeSeconds: Math.round((Date.now() - input.startedAt) / 1000),
    ready: snapshot !== null && input.natsConnected(),
    natsConnected: input.natsConnected(),
    ruleCache: {
      state: service.ruleCacheState(),
      attempt: cache?.attempt ?? 0,
      lastError: cache?.lastError ?? null,
      loads: cache?.loads ?? 0,
      /** Timed refreshes that changed nothing: counted, not listed as transitions. */
      quietRefreshes: service.recent.quietRefreshes,
    },
    fleet: {
      instanceId: service.instanceId,
      role: cache?.role ?? "solo",
      served: snapshot?.version ?? null,
      source: cache?.source ?? null,
      current: cache?.announced ?? null,
      pinned: cache?.pinned ?? null,
      pinIgnored: cache?.pinIgnored ?? null,
      tables: service.tablesAccess(),
      fetches: cache?.fetches ?? 0,
      publishError: cache?.publishError ?? null,
      instances: cache?.role === "solo" ? [] : service.fleetInstances(),
    },
    snapshot:
      snapshot === null
        ? null
        : { version: snapshot.version, loadKind: snapshot.loadKind, loadedAt: snapshot.loadedAt, ageSeconds: Math.round((Date.now() - (service.snapshotConfirmedAt() ?? Date.parse(snapshot.loadedAt))) / 1000), ...snapshot.counts },
    flow: {
      inFlight: service.stats.inFlight,
      limit: service.limit.limit,
      concurrency: service.concurrency.view(),
      waiting: service.stats.waiting,
      received: service.stats.received,
      consumerLag: service.consumerLag(),
      throughputPerSecond: Math.round(input.throughput()),
    },
    verdicts: Object.fromEntries(VERDICT_ACTIONS.map((a) => [a, service.stats.verdicts[a]])),
    deadLetters: Object.values(service.stats.deadLetters).reduce((sum, n) => sum + n, 0),
    retries: o.retry,
    recent: service.recent,
    inspector: input.inspector,
    config: input.config,
  };
}

export type Status = ReturnType<typeof currentStatus>;
