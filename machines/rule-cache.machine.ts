/**
 * The rule-cache lifecycle: idle → loading → ready ⇄ refreshing, retrying with
 * capped, jittered exponential backoff, and stopping → stopped. Exactly one
 * load is in flight at any moment whatever arrives: loads run only while in
 * `loading` or `refreshing`, and a refresh asked for during a load is kept as
 * one pending flag (bounded), not a queue. The machine does no I/O: the
 * composition root provides `loadRules` and `closeRules`.
 */
import { assign, fromPromise, setup } from "xstate";
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
}

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
}

export type RuleCacheEvent =
  | { type: "START" }
  | { type: "REFRESH"; reason: "notice" | "manual" | "timer"; full?: boolean }
  | { type: "CONFIG.REFRESH_INTERVAL"; ms: number }
  | { type: "STOP" };

/** Capped exponential backoff with equal jitter: half fixed, half random. */
export function retryDelayMs(attempt: number, baseMs: number, maxMs: number, random: () => number): number {
  const capped = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(capped / 2 + (capped / 2) * random());
}

const message = (error: unknown) => (error instanceof Error ? error.message : String(error));

/** The new snapshot replaces the old in one step. */
const storeSnapshot = (context: RuleCacheContext, snapshot: RuleSnapshot): Partial<RuleCacheContext> => ({
  snapshot,
  version: snapshot.version,
  loadedAt: snapshot.loadedAt,
  attempt: 0,
  lastError: null,
  refreshesSinceFull: snapshot.loadKind === "full" ? 0 : context.refreshesSinceFull + 1,
  gapOpen: context.minRefreshGapMs === 0,
});

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
  },
  delays: {
    retryDelay: ({ context }) => retryDelayMs(context.attempt, context.retryBaseMs, context.retryMaxMs, Math.random),
    // 0 (off) fires at once and the guard below refuses it: no timer refresh.
    refreshInterval: ({ context }) => context.refreshIntervalMs,
    minRefreshGap: ({ context }) => context.minRefreshGapMs,
  },
  guards: {
    hasSnapshot: ({ context }) => context.snapshot !== null,
    refreshEnabled: ({ context }) => context.refreshIntervalMs > 0,
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
    markRefreshPending: assign(({ context, event }) => ({
      refreshPending: true,
      fullPending: context.fullPending || (event.type === "REFRESH" && event.full === true),
    })),
    openGap: assign({ gapOpen: true }),
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
  }),
  on: {
    STOP: ".stopping",
    "CONFIG.REFRESH_INTERVAL": { actions: "setRefreshInterval" },
  },
  states: {
    idle: {
      on: { START: "loading" },
    },
    loading: {
      entry: "countLoad",
      invoke: {
        src: "loadRules",
        input: { mode: "full", previous: null },
        onDone: { target: "ready", actions: assign(({ context, event }) => storeSnapshot(context, event.output)) },
        onError: { target: "retrying", actions: assign(({ context, event }) => recordFailure(context, event.error)) },
      },
      on: { REFRESH: { actions: "markRefreshPending" } },
    },
    retrying: {
      after: {
        retryDelay: [{ guard: "hasSnapshot", target: "refreshing" }, { target: "loading" }],
      },
      // Kept for after the retry (a full reload asked for must not be lost).
      on: { REFRESH: { actions: "markRefreshPending" } },
    },
    ready: {
      always: { guard: "refreshDue", target: "refreshing" },
      after: {
        refreshInterval: { guard: "refreshEnabled", target: "refreshing" },
        // A flood of notices makes at most one refresh per gap: those within it are one pending flag.
        minRefreshGap: [{ guard: "refreshPending", target: "refreshing" }, { actions: "openGap" }],
      },
      on: {
        REFRESH: [
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
        input: ({ context }) => ({ mode: context.loadMode, previous: context.snapshot }),
        onDone: { target: "ready", actions: assign(({ context, event }) => storeSnapshot(context, event.output)) },
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
