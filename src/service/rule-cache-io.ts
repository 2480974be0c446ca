/**
 * The rule cache's I/O, given to the pure machine (machines/rule-cache.machine.ts) as its actors:
 * reading the tables, fetching and publishing the fleet's snapshots, and holding the lease while
 * watching the fleet's keys. Each is measured and logged here; the machine decides when each runs.
 */
import type { KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { fromCallback, fromPromise } from "xstate";
import { ruleCacheMachine, type LoadRulesInput } from "../../machines/rule-cache.machine.js";
import { discoverFleet } from "../fleet/discover-fleet.js";
import { startLeaderLease } from "../fleet/leader-lease.js";
import { announce, watchFleetKeys, type Announcement } from "../fleet/rules-bucket.js";
import { SnapshotFormatError } from "../fleet/snapshot-codec.js";
import { snapshotRows, type SnapshotStore } from "../fleet/snapshot-store.js";
import { SnapshotOverBudgetError } from "../match/snapshot-budget.js";
import type { RuleSnapshot } from "../match/snapshot.js";
import type { Metrics } from "../ops/metrics.js";
import type { TablesAccess } from "../rules/check-tables.js";
import { RuleStoreError } from "../rules/database.js";
import type { RuleLoader } from "../rules/load-rules.js";
import type { FleetLink } from "./fleet-link.js";

export interface RuleCacheIoSettings {
  readonly snapshotMaxMb: number;
  readonly snapshotKeep: number;
  readonly leaseMs: number;
  readonly serviceName: string;
  readonly consumer: string;
  readonly rulesBucket: string;
}

export interface RuleCacheIo {
  readonly settings: RuleCacheIoSettings;
  readonly nc: NatsConnection;
  readonly log: Logger;
  readonly now: () => Date;
  readonly loader: RuleLoader;
  readonly metrics: Pick<Metrics, "ruleLoad" | "ruleFetch" | "rulePublish">;
  readonly tables: TablesAccess;
  /** The fleet's buckets; null with TORT_FLEET=off. */
  readonly fleet: { readonly store: SnapshotStore; readonly rulesKv: KV } | null;
  readonly instanceId: string;
  /** The rule tables this instance serves, as announcements name them. */
  readonly databaseId: string;
  readonly link: FleetLink;
}

/** The rule-cache machine with its I/O. */
export const provideRuleCache = (io: RuleCacheIo) =>
  ruleCacheMachine.provide({
    actors: {
      loadRules: loadRules(io),
      closeRules: fromPromise<void, void>(async () => {
        // A leader hands the lease back first: a successor need not wait for it to run out.
        await io.link.lease?.release();
      }),
      fetchSnapshot: fetchSnapshot(io),
      publishSnapshot: publishSnapshot(io),
      fleet: fleetMembership(io),
    },
  });

function loadRules({ loader, metrics, tables, link, log, settings }: RuleCacheIo) {
  return fromPromise<RuleSnapshot, LoadRulesInput>(async ({ input, signal }) => {
    const kind = input.mode === "full" || input.previous === null ? "full" : "incremental";
    const started = performance.now();
    const seconds = () => (performance.now() - started) / 1000;
    try {
      const snapshot = kind === "full" ? await loader.loadFull({ signal }) : await loader.loadChanges(input.previous!, { signal });
      metrics.ruleLoad(kind, "ok", seconds());
      tables.noteLoad({ readable: true });
      link.noticeOwedSince = null;
      return snapshot;
    } catch (err) {
      if (err instanceof SnapshotOverBudgetError) {
        metrics.ruleLoad(kind, "over_budget", seconds());
        log.error({ loadKind: kind, ...err.rows, estimateMb: Math.round(err.estimateBytes / 2 ** 20), maxMb: settings.snapshotMaxMb }, err.message);
      } else {
        metrics.ruleLoad(kind, "error", seconds());
        if (err instanceof RuleStoreError) tables.noteLoad({ readable: false, reason: err.message });
        // The cause, at error level, on every attempt (the machine retries with backoff).
        log.error({ err: (err as Error).message, loadKind: kind }, "rule load failed");
      }
      throw err;
    }
  });
}

function fetchSnapshot({ fleet, metrics, link, log, databaseId }: RuleCacheIo) {
  return fromPromise<RuleSnapshot, { version: string }>(async ({ input }) => {
    const started = performance.now();
    try {
      if (fleet === null) throw new Error("no fleet: TORT_FLEET is off");
      const snapshot = await fleet.store.get(input.version, databaseId, link.expectedDigest(input.version));
      metrics.ruleFetch("ok");
      log.info({ version: input.version, ms: Math.round(performance.now() - started) }, "rule snapshot fetched from the fleet");
      return snapshot;
    } catch (err) {
      // A refused object is logged once per version (an announcement re-written with the same version retries it).
      const refused = err instanceof SnapshotFormatError;
      metrics.ruleFetch(refused ? "refused" : "error");
      if (!refused || !link.wasRefused(input.version)) {
        log.error({ version: input.version, err: (err as Error).message }, refused ? "rule snapshot refused: it failed its checks and is not served" : "rule snapshot could not be fetched");
      }
      if (refused) link.noteRefused(input.version);
      throw err;
    }
  });
}

function publishSnapshot({ fleet, metrics, link, log, now, instanceId, databaseId, settings }: RuleCacheIo) {
  return fromPromise<void, { snapshot: RuleSnapshot }>(async ({ input }) => {
    const started = performance.now();
    try {
      if (fleet === null) throw new Error("no fleet: TORT_FLEET is off");
      let made: Announcement;
      let stored: unknown = null;
      try {
        made = await fleet.store.put(input.snapshot, instanceId, databaseId);
      } catch (err) {
        // Announced all the same: the followers learn that the rules changed, fail to fetch them, and read the tables.
        stored = err;
        const s = input.snapshot;
        made = { version: s.version, object: "", sha256: "", bytes: 0, rows: snapshotRows(s), builtAt: new Date().toISOString(), builtBy: instanceId, database: databaseId };
      }
      made = { ...made, confirmedAt: now().toISOString() };
      // A leader that lost the lease meanwhile leaves the announcing to its successor (see announce()).
      if (link.lease === null) throw new Error("no lease: not leading");
      await announce(fleet.rulesKv, link.lease, made);
      if (stored !== null) throw new Error(`the snapshot could not be stored (announced without it): ${(stored as Error).message}`);
      metrics.rulePublish("ok");
      log.info({ version: made.version, bytes: made.bytes, ms: Math.round(performance.now() - started) }, "rule snapshot published to the fleet");
      const pruned = await fleet.store.prune(settings.snapshotKeep, [made.version, link.pin?.version ?? null]);
      if (pruned.length > 0) log.info({ pruned, keep: settings.snapshotKeep }, "old rule snapshots deleted");
    } catch (err) {
      metrics.rulePublish("error");
      log.error({ version: input.snapshot.version, err: (err as Error).message }, "rule snapshot could not be published; followers fall back to the rule tables");
      throw err;
    }
  });
}

/** The lease, held for as long as the rule cache runs, and the fleet's keys watched meanwhile. */
function fleetMembership({ fleet, nc, log, now, link, tables, instanceId, databaseId, settings }: RuleCacheIo) {
  return fromCallback(({ sendBack }) => {
    if (fleet === null) return;
    const held = startLeaderLease(fleet.rulesKv, {
      holder: instanceId,
      leaseMs: settings.leaseMs,
      log,
      onRole: (role) => {
        link.noticeOwedSince = null;
        sendBack({ type: "FLEET.ROLE", role });
      },
      // Leading means producing versions: reading the tables, and answering a notice within a lease.
      canLead: () => tables.readable() !== false && (link.noticeOwedSince === null || now().getTime() - link.noticeOwedSince <= settings.leaseMs),
      othersCanLead: async () =>
        (await discoverFleet(nc, { service: settings.serviceName, consumer: settings.consumer, maxWaitMs: Math.min(2_000, settings.leaseMs / 3) })).some(
          (i) => i.id !== instanceId && i.tablesReadable === true,
        ),
    });
    link.lease = held;
    const watch = watchFleetKeys(
      fleet.rulesKv,
      {
        current: (a) => {
          if (a !== null && a.database !== databaseId) {
            // Another deployment's rules in our bucket: never served. This instance works alone from
            // now on (reads its own tables, refreshes itself) and stops contending for the lease.
            log.error(
              { version: a.version, builtBy: a.builtBy, theirDatabase: a.database, ourDatabase: databaseId, bucket: settings.rulesBucket },
              "a rules announcement from other rule tables (another deployment shares this bucket): this instance leaves the fleet and reads its own tables; give each deployment its own TORT_RULES_BUCKET and TORT_SNAPSHOT_BUCKET",
            );
            void held.release();
            sendBack({ type: "FLEET.ISOLATE" });
            return;
          }
          link.announcement = a;
          sendBack({ type: "FLEET.CURRENT", version: a?.version ?? null });
        },
        pinned: (p) => {
          link.pin = p;
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
  });
}
