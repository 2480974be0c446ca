/**
 * Follows the rule cache's snapshots: puts each new rule snapshot into service (warming the
 * per-message stages up before the first), lifts or closes the pull's cap, renews the fleet's
 * confirmation after a leader's read, logs transitions and errors, and keeps the recent ones for
 * the status page. The one writer of the service's read model (ServiceState's cache fields).
 */
import type { KV } from "@nats-io/kv";
import type { Logger } from "pino";
import type { BehaviorSubject, Subject } from "rxjs";
import type { ActorRefFrom } from "xstate";
import type { ruleCacheMachine, RuleCacheContext } from "../../machines/rule-cache.machine.js";
import { announce } from "../fleet/rules-bucket.js";
import type { ConcurrencyLimit } from "../gate/concurrency-limit.js";
import type { RuleSnapshot } from "../match/snapshot.js";
import type { ServiceEventRecord } from "../ops/ops-view.js";
import { createSkippedRowsReporter } from "../rules/report-skipped.js";
import { warmUpStages } from "../warm-up.js";
import type { FleetLink } from "./fleet-link.js";
import type { ServiceState } from "./service-state.js";

/** Rule-cache transitions and errors kept for the status page, at most, of each. */
export const RECENT_EVENTS = 50;

export interface RecentEvents {
  readonly transitions: readonly ServiceEventRecord[];
  readonly errors: readonly ServiceEventRecord[];
  /** Refreshes that no notice asked for and that changed nothing: counted, not listed. */
  readonly quietRefreshes: { count: number; lastAt: string | null };
}

export interface FollowOptions {
  readonly state: ServiceState;
  readonly snapshot$: BehaviorSubject<RuleSnapshot | null>;
  /** Emits when the first load failed: the messages waiting for it go back to JetStream. */
  readonly giveBack$: Subject<void>;
  readonly limit: ConcurrencyLimit;
  readonly link: FleetLink;
  readonly rulesKv: KV | null;
  readonly log: Logger;
  readonly now: () => Date;
}

export function followRuleCache(cache: ActorRefFrom<typeof ruleCacheMachine>, o: FollowOptions): { readonly recent: RecentEvents; stop(): void } {
  const transitions: ServiceEventRecord[] = [];
  const errors: ServiceEventRecord[] = [];
  const remember = (list: ServiceEventRecord[], state: string, detail?: string | null, at = o.now().toISOString()) => {
    list.push({ at, state, ...(detail ? { detail } : {}) });
    if (list.length > RECENT_EVENTS) list.shift();
  };
  const servePrevious = serveSnapshots(o);
  const quietRefreshes = { count: 0, lastAt: null as string | null };
  /** A refresh in progress: when it began, from which version, and the notices seen before it. */
  let refresh: { at: string; version: string | null; notices: number } | null = null;
  let noticesSettled = o.state.notices;
  let lastAttempt = 0;
  let givenBack = false;
  let pinIgnored: string | null = null;
  let latestRead: RuleSnapshot | null = null;
  const follow = (s: ReturnType<typeof cache.getSnapshot>) => {
    const state = String(s.value);
    const ctx = s.context;
    o.state.cache = ctx;
    o.state.refreshIntervalMs = ctx.refreshIntervalMs;
    servePrevious(ctx);
    if (ctx.attempt > lastAttempt && ctx.lastError !== null) {
      remember(errors, state, `attempt ${ctx.attempt}: ${ctx.lastError}`);
      if (o.snapshot$.value === null && !givenBack) {
        // The first load failed: hold nothing while retrying. Messages waiting for it go back to
        // JetStream (healthy instances on the consumer take them), and nothing more is pulled
        // until a snapshot exists.
        givenBack = true;
        o.limit.setCap(0);
        o.giveBack$.next();
        o.log.warn({ attempt: ctx.attempt }, "first rule load failed: waiting messages handed back, pulling nothing until rules are loaded");
      }
    }
    lastAttempt = ctx.attempt;
    if (ctx.pinIgnored !== pinIgnored) {
      pinIgnored = ctx.pinIgnored;
      if (pinIgnored !== null) {
        o.log.error({ pinned: pinIgnored, serving: ctx.version, reason: ctx.lastError }, "the pinned rules version cannot be served: ignored, this instance serves the current rules as if unpinned; `tortmatch rules unpin`, or pin a version `tortmatch rules versions` lists");
        remember(errors, state, ctx.lastError ?? `pinned ${pinIgnored} ignored`);
      }
    }
    if (ctx.latest !== latestRead) {
      latestRead = ctx.latest;
      confirmRead(ctx, o);
    }
    if (state !== o.state.cacheState) {
      const previous = o.state.cacheState;
      o.state.cacheState = state;
      const level = state === "retrying" ? "warn" : "info";
      o.log[level]({ ruleCache: state, attempt: ctx.attempt, lastError: ctx.lastError ?? undefined }, "rule cache state");
      if (state === "refreshing") {
        // Listed only once it is known to be an event: it changed the rules, failed, or a notice asked for it.
        refresh = { at: o.now().toISOString(), version: ctx.version, notices: noticesSettled };
        return;
      }
      if (refresh !== null && previous === "refreshing") {
        const quiet = state === "ready" && ctx.version === refresh.version && o.state.notices === refresh.notices;
        if (quiet) {
          quietRefreshes.count++;
          quietRefreshes.lastAt = o.now().toISOString();
        } else {
          remember(transitions, "refreshing", refresh.version, refresh.at);
        }
        refresh = null;
        noticesSettled = o.state.notices;
        if (quiet) return;
      }
      noticesSettled = o.state.notices;
      remember(transitions, state, ctx.version);
    }
  };
  const subscription = cache.subscribe(follow);
  follow(cache.getSnapshot()); // the state it is already in
  return { recent: { transitions, errors, quietRefreshes }, stop: () => subscription.unsubscribe() };
}

/** Each new snapshot into service; before the first, the per-message stages are warmed up, and after it the pull's cap is lifted. */
function serveSnapshots(o: FollowOptions) {
  const skippedRows = createSkippedRowsReporter(o.log);
  return (ctx: RuleCacheContext) => {
    if (ctx.snapshot === o.snapshot$.value || ctx.snapshot === null) return;
    const first = o.snapshot$.value === null;
    if (first) {
      const warm = warmUpStages(ctx.snapshot);
      o.log.debug({ iterations: warm.iterations, hits: warm.hits, invalid: warm.invalid, ms: Math.round(warm.ms) }, "per-message stages warmed up");
    }
    o.snapshot$.next(ctx.snapshot);
    if (first) o.limit.setCap(null);
    o.log.info({ version: ctx.version, loadKind: ctx.snapshot.loadKind, loads: ctx.loads, ...ctx.snapshot.counts }, "rule snapshot in service");
    skippedRows.report(ctx.snapshot);
  };
}

/** A leader's read that changed nothing renews the announcement's confirmation: followers' snapshot age is the fleet's. */
function confirmRead(ctx: RuleCacheContext, o: FollowOptions) {
  const { lease, announcement } = o.link;
  const read = ctx.latest;
  if (read === null || ctx.role !== "leader" || lease === null || announcement === null || o.rulesKv === null || announcement.version !== read.version) return;
  announce(o.rulesKv, lease, { ...announcement, confirmedAt: read.loadedAt }).catch((err: unknown) =>
    o.log.debug({ err: (err as Error).message }, "rules announcement not confirmed (the next read retries)"),
  );
}
