/**
 * The rule-cache lifecycle: idle → loading → ready ⇄ refreshing, retrying with
 * capped, jittered exponential backoff, and stopping → stopped. Exactly one
 * load is in flight at any moment whatever arrives: loads run only while in
 * `loading`, `refreshing` or `fetching`, and a refresh asked for during a load
 * is kept as one pending flag (bounded), not a queue.
 *
 * In a fleet (spec section 9) the `fleet` actor reports this instance's role
 * (the lease), the announced version and the pinned one. The leader reads
 * MySQL as above and then publishes (`publishing`); a follower waits for an
 * announcement (`awaitingLeader`, bounded by `leaderWaitMs`, then it loads
 * itself) and fetches each announced or pinned version (`fetching`), falling
 * back to the database when the fetch fails. Outside a fleet the role is
 * `solo` and the fleet states are never entered.
 *
 * The machine does no I/O: the composition root provides `loadRules`,
 * `fetchSnapshot`, `publishSnapshot`, `fleet` and `closeRules`.
 */
import { and, assign, fromCallback, fromPromise, setup, type AnyEventObject } from "xstate";
import type { RuleSnapshot } from "../src/match/snapshot.js";

/** What a load is asked to do. */
export interface LoadRulesInput {
  readonly mode: "full" | "incremental";
  /** The snapshot an incremental refresh starts from. */
  readonly previous: RuleSnapshot | null;
}

export interface RuleCacheInput {
  /** 0 = no timer refresh, else the interval in ms (spec section 6). */
  readonly refreshIntervalMs: number;
  /** Every Nth refresh is a full reload, which also catches hard deletes. */
  readonly fullReloadEvery: number;
  readonly retryBaseMs: number;
  readonly retryMaxMs: number;
  /** Shortest time from the end of one load to the start of a refresh asked for by a notice, ms. */
  readonly minRefreshGapMs: number;
  /** Share the rules work with the other instances (spec section 9); false = every instance reads MySQL itself. */
  readonly fleet?: boolean;
  /** How long a starting follower waits for an announcement before it loads the rules itself, ms. */
  readonly leaderWaitMs?: number;
}

/** solo: no fleet; pending: the lease has not answered yet. */
export type RuleCacheRole = "solo" | "pending" | "leader" | "follower";

/** What the fleet actor reports. */
export type FleetEvent =
  | { type: "FLEET.ROLE"; role: "leader" | "follower" }
  | { type: "FLEET.CURRENT"; version: string | null }
  | { type: "FLEET.PINNED"; version: string | null }
  /** The fleet's bucket holds another deployment's rules: work alone from now on (read MySQL, refresh, never fetch). */
  | { type: "FLEET.ISOLATE" };

export interface RuleCacheContext extends RuleCacheInput {
  readonly snapshot: RuleSnapshot | null;
  readonly version: string | null;
  readonly loadedAt: string | null;
  /** Failed attempts in a row (0 after a success). */
  readonly attempt: number;
  readonly lastError: string | null;
  readonly refreshesSinceFull: number;
  /** A refresh was asked for while a load ran (or within the refresh gap): do one more when it may start. */
  readonly refreshPending: boolean;
  /** A full reload was asked for (`tortmatch rules refresh --full`): the next refresh reads everything. */
  readonly fullPending: boolean;
  /** What the load in progress (or the next) does. */
  readonly loadMode: "full" | "incremental";
  /** The refresh gap since the last load has passed: a notice may start a refresh at once. */
  readonly gapOpen: boolean;
  /** Loads started so far (full and incremental). */
  readonly loads: number;
  readonly role: RuleCacheRole;
  /** The version announced as `current` in the fleet, if any. */
  readonly announced: string | null;
  /** The version pinned for the fleet, if any: served while it is, unless it cannot be. */
  readonly pinned: string | null;
  /**
   * The pinned version when it cannot be served (its fetch was refused: absent, damaged, another
   * deployment's, over the memory budget): ignored as if unpinned, alike by every instance, until the pin changes.
   */
  readonly pinIgnored: string | null;
  /** The newest snapshot this instance read from MySQL (a leader's base for refreshes, served again after an unpin). */
  readonly latest: RuleSnapshot | null;
  /** Where the served snapshot came from. */
  readonly source: "database" | "fleet" | null;
  /** The version whose fetch failed last: not fetched again until the announcement or pin changes. */
  readonly failedFetch: string | null;
  /** Snapshot fetches started so far. */
  readonly fetches: number;
  /** The last publish failure, if the last publish failed. */
  readonly publishError: string | null;
}

/** The pin in force: the pinned version, unless it could not be served. */
export function pinInForce(context: Pick<RuleCacheContext, "pinned" | "pinIgnored">): string | null {
  return context.pinned !== null && context.pinned !== context.pinIgnored ? context.pinned : null;
}

/** The version the fleet asks this instance to serve, or null when it serves what it reads itself. */
export function fleetTarget(context: Pick<RuleCacheContext, "role" | "pinned" | "pinIgnored" | "announced" | "latest">): string | null {
  if (context.role === "solo") return null;
  const pin = pinInForce(context);
  if (pin !== null) return pin;
  if (context.role === "leader" && context.latest !== null) return null;
  return context.announced;
}

export type RuleCacheEvent =
  | { type: "START" }
  | { type: "REFRESH"; reason: "notice" | "manual" | "timer"; full?: boolean }
  | { type: "CONFIG.REFRESH_INTERVAL"; ms: number }
  | { type: "STOP" }
  | FleetEvent;

/** Capped exponential backoff with equal jitter: half fixed, half random. */
export function retryDelayMs(attempt: number, baseMs: number, maxMs: number, random: () => number): number {
  const capped = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(capped / 2 + (capped / 2) * random());
}

const message = (error: unknown) => (error instanceof Error ? error.message : String(error));

/** The served snapshot, replaced in one step. */
const serve = (snapshot: RuleSnapshot, source: "database" | "fleet"): Partial<RuleCacheContext> => ({
  snapshot,
  version: snapshot.version,
  loadedAt: snapshot.loadedAt,
  source,
});

/** A snapshot read from MySQL: served at once, unless a pinned version is served instead. */
const storeSnapshot = (context: RuleCacheContext, snapshot: RuleSnapshot): Partial<RuleCacheContext> => ({
  ...(pinInForce(context) === null || context.snapshot === null || context.role === "solo" ? serve(snapshot, "database") : {}),
  latest: snapshot,
  attempt: 0,
  lastError: null,
  refreshesSinceFull: snapshot.loadKind === "full" ? 0 : context.refreshesSinceFull + 1,
  gapOpen: context.minRefreshGapMs === 0,
});

/** What a finished load hands over (the done event of `loadRules`). */
const readOf = (event: unknown) => (event as { output: RuleSnapshot }).output;

const recordFailure = (context: RuleCacheContext, error: unknown): Partial<RuleCacheContext> => ({
  attempt: context.attempt + 1,
  lastError: message(error),
  // A failed full reload is still owed.
  fullPending: context.fullPending || context.loadMode === "full",
});

export const ruleCacheMachine = setup({
  types: {
    context: {} as RuleCacheContext,
    events: {} as RuleCacheEvent,
    input: {} as RuleCacheInput,
  },
  actors: {
    loadRules: fromPromise<RuleSnapshot, LoadRulesInput>(async () => {
      throw new Error("loadRules is provided by the composition root");
    }),
    closeRules: fromPromise<void, void>(async () => {}),
    fetchSnapshot: fromPromise<RuleSnapshot, { version: string }>(async () => {
      throw new Error("fetchSnapshot is provided by the composition root");
    }),
    publishSnapshot: fromPromise<void, { snapshot: RuleSnapshot }>(async () => {}),
    /** Reports FLEET.* events: the lease, the announcement and the pin. Nothing outside a fleet. */
    fleet: fromCallback<AnyEventObject>(() => {}),
  },
  delays: {
    retryDelay: ({ context }) => retryDelayMs(context.attempt, context.retryBaseMs, context.retryMaxMs, Math.random),
    leaderWait: ({ context }) => context.leaderWaitMs ?? 30_000,
    // 0 (off) fires at once and the guard below refuses it: no timer refresh.
    refreshInterval: ({ context }) => context.refreshIntervalMs,
    minRefreshGap: ({ context }) => context.minRefreshGapMs,
  },
  guards: {
    hasSnapshot: ({ context }) => context.snapshot !== null,
    refreshEnabled: ({ context }) => context.refreshIntervalMs > 0 && context.role !== "follower",
    /** This instance reads MySQL now: it leads, or there is no fleet. */
    readsDatabase: ({ context }) => context.role === "solo" || context.role === "leader",
    isFollower: ({ context }) => context.role === "follower",
    followerServing: ({ context }) => context.role === "follower" && context.snapshot !== null,
    /** The fleet asks for a version other than the one served, and it has not just failed. */
    needsFetch: ({ context }) => {
      const target = fleetTarget(context);
      return target !== null && target !== context.version && target !== context.failedFetch;
    },
    /** A leader read a version the fleet has not been told of: it publishes it. */
    readIsNews: ({ context, event }) => context.role === "leader" && readOf(event).version !== context.announced,
    /** The fetch that failed was of the pin in force. */
    fetchingPin: ({ context }) => pinInForce(context) !== null,
    refreshPending: ({ context }) => context.refreshPending,
    gapClosed: ({ context }) => !context.gapOpen,
    refreshDue: ({ context }) => context.refreshPending && context.gapOpen,
  },
  actions: {
    /** A load starts: count it, decide full or incremental, clear what asked for it. */
    countLoad: assign(({ context }) => ({
      loads: context.loads + 1,
      refreshPending: false,
      fullPending: false,
      loadMode:
        context.snapshot === null || context.fullPending || context.refreshesSinceFull + 1 >= context.fullReloadEvery ? ("full" as const) : ("incremental" as const),
    })),
    /** A REFRESH for a follower is the leader's to do. */
    markRefreshPending: assign(({ context, event }) => (context.role === "follower" ? {} : {
      refreshPending: true,
      fullPending: context.fullPending || (event.type === "REFRESH" && event.full === true),
    })),
    setRole: assign(({ context, event }) => {
      if (event.type !== "FLEET.ROLE" || context.role === "solo") return {};
      // A new leader catches up at once: a notice may have arrived while nobody led.
      const takesOver = event.role === "leader" && context.role !== "leader" && context.snapshot !== null;
      // A follower leaves refreshes to the leader.
      return { role: event.role, ...(takesOver ? { refreshPending: true } : event.role === "follower" ? { refreshPending: false, fullPending: false } : {}) };
    }),
    // A new version gets a fetch of its own; the same one re-announced (the leader confirming it) does
    // not: an object refused once is not fetched again every refresh interval.
    setAnnounced: assign(({ context, event }) =>
      event.type === "FLEET.CURRENT" && context.role !== "solo"
        ? { announced: event.version, failedFetch: event.version === context.announced ? context.failedFetch : null }
        : {},
    ),
    setPinned: assign(({ context, event }) => {
      if (event.type !== "FLEET.PINNED" || context.role === "solo") return {};
      // Unpinned: a leader serves its own newest read again; a follower fetches the announced version.
      const back = event.version === null && context.role === "leader" && context.latest !== null ? serve(context.latest, "database") : {};
      // A new pin gets its own try, even after the last one could not be served.
      return { pinned: event.version, pinIgnored: null, failedFetch: null, ...back };
    }),
    /** The pinned version cannot be served: ignored as if unpinned (a leader serves its own newest read again). */
    ignorePin: assign(({ context, event }) => ({
      pinIgnored: context.pinned,
      lastError: `pinned rules version ${context.pinned} cannot be served, ignored: ${message((event as { error?: unknown }).error)}`,
      ...(context.role === "leader" && context.latest !== null ? serve(context.latest, "database") : {}),
    })),
    openGap: assign({ gapOpen: true }),
    /** A load from MySQL finished: store what it read. */
    storeRead: assign(({ context, event }) => storeSnapshot(context, readOf(event))),
    recordFetchFailure: assign(({ context, event }) => ({
      failedFetch: fleetTarget(context),
      lastError: `fetching rules: ${message((event as { error?: unknown }).error)}`,
    })),
    setRefreshInterval: assign(({ event }) => ({
      refreshIntervalMs: event.type === "CONFIG.REFRESH_INTERVAL" ? event.ms : 0,
    })),
  },
}).createMachine({
  id: "ruleCache",
  initial: "idle",
  context: ({ input }) => ({
    ...input,
    snapshot: null,
    version: null,
    loadedAt: null,
    attempt: 0,
    lastError: null,
    refreshesSinceFull: 0,
    refreshPending: false,
    fullPending: false,
    loadMode: "full",
    gapOpen: true,
    loads: 0,
    role: input.fleet === true ? "pending" : "solo",
    announced: null,
    pinned: null,
    pinIgnored: null,
    latest: null,
    source: null,
    failedFetch: null,
    fetches: 0,
    publishError: null,
  }),
  // The fleet actor lives as long as the rule cache; it stops with it.
  invoke: { id: "fleet", src: "fleet" },
  on: {
    STOP: ".stopping",
    "CONFIG.REFRESH_INTERVAL": { actions: "setRefreshInterval" },
    "FLEET.ROLE": { actions: "setRole" },
    "FLEET.CURRENT": { actions: "setAnnounced" },
    "FLEET.PINNED": { actions: "setPinned" },
    "FLEET.ISOLATE": { actions: assign({ role: "solo" as const, announced: null, pinned: null, pinIgnored: null }) },
  },
  states: {
    idle: {
      on: { START: "awaitingLeader" },
    },
    /** Start: the leader or a lone instance loads; a follower fetches the announced version, or waits for one (bounded). */
    awaitingLeader: {
      always: [
        { guard: "readsDatabase", target: "loading" },
        { guard: "needsFetch", target: "fetching" },
      ],
      after: { leaderWait: "loading" },
      on: { REFRESH: { actions: "markRefreshPending" } },
    },
    loading: {
      entry: "countLoad",
      invoke: {
        src: "loadRules",
        input: { mode: "full", previous: null },
        onDone: [
          { guard: "readIsNews", target: "publishing", actions: "storeRead" },
          { target: "ready", actions: "storeRead" },
        ],
        onError: { target: "retrying", actions: assign(({ context, event }) => recordFailure(context, event.error)) },
      },
      on: { REFRESH: { actions: "markRefreshPending" } },
    },
    /** Get an announced or pinned version from the snapshot store; on failure, read MySQL instead (a pin excepted). */
    fetching: {
      entry: assign(({ context }) => ({ fetches: context.fetches + 1 })),
      invoke: {
        src: "fetchSnapshot",
        input: ({ context }) => ({ version: fleetTarget(context)! }),
        onDone: {
          target: "ready",
          actions: assign(({ event }) => ({ ...serve(event.output, "fleet"), failedFetch: null, attempt: 0, lastError: null, gapOpen: true })),
        },
        // A pin that cannot be served is ignored: the instance serves what it would unpinned (the
        // announced version, or its own read). Otherwise MySQL is the fallback.
        onError: [
          { guard: and(["fetchingPin", "hasSnapshot"]), target: "ready", actions: "ignorePin" },
          { guard: "fetchingPin", target: "awaitingLeader", actions: "ignorePin" },
          { guard: "hasSnapshot", target: "refreshing", actions: "recordFetchFailure" },
          { target: "loading", actions: "recordFetchFailure" },
        ],
      },
      on: { REFRESH: { actions: "markRefreshPending" } },
    },
    /** The leader puts what it read into the snapshot store and announces it; the snapshot is served meanwhile. */
    publishing: {
      invoke: {
        src: "publishSnapshot",
        input: ({ context }) => ({ snapshot: context.latest! }),
        onDone: { target: "ready", actions: assign(({ context }) => ({ publishError: null, announced: context.latest!.version })) },
        onError: { target: "ready", actions: assign(({ event }) => ({ publishError: message(event.error) })) },
      },
      on: { REFRESH: { actions: "markRefreshPending" } },
    },
    retrying: {
      always: { guard: "needsFetch", target: "fetching" },
      after: {
        // A follower (the lease was lost meanwhile) leaves refreshes to the new leader.
        retryDelay: [{ guard: "followerServing", target: "ready" }, { guard: "hasSnapshot", target: "refreshing" }, { target: "loading" }],
      },
      // Kept for after the retry (a full reload asked for must not be lost).
      on: { REFRESH: { actions: "markRefreshPending" } },
    },
    ready: {
      always: [
        { guard: "refreshDue", target: "refreshing" },
        { guard: "needsFetch", target: "fetching" },
      ],
      after: {
        refreshInterval: { guard: "refreshEnabled", target: "refreshing" },
        // A flood of notices makes at most one refresh per gap: those within it are one pending flag.
        minRefreshGap: [{ guard: "refreshPending", target: "refreshing" }, { actions: "openGap" }],
      },
      on: {
        REFRESH: [
          { guard: "isFollower" }, // the leader's to do
          { guard: "gapClosed", actions: "markRefreshPending" },
          { target: "refreshing", actions: "markRefreshPending" },
        ],
        // Re-entering restarts the timer with the new interval.
        "CONFIG.REFRESH_INTERVAL": { target: "ready", reenter: true, actions: "setRefreshInterval" },
      },
    },
    refreshing: {
      entry: "countLoad",
      invoke: {
        src: "loadRules",
        input: ({ context }) => ({ mode: context.loadMode, previous: context.latest ?? context.snapshot }),
        onDone: [
          { guard: "readIsNews", target: "publishing", actions: "storeRead" },
          { target: "ready", actions: "storeRead" },
        ],
        // The old snapshot keeps serving; retry with backoff.
        onError: { target: "retrying", actions: assign(({ context, event }) => recordFailure(context, event.error)) },
      },
      on: { REFRESH: { actions: "markRefreshPending" } },
    },
    stopping: {
      invoke: { src: "closeRules", onDone: "stopped", onError: "stopped" },
      on: { STOP: {} },
    },
    stopped: { type: "final" },
  },
});
