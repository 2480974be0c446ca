/**
 * The actor system of one tortmatch instance, whole: the rule cache, the live
 * config watcher, the rule-change listener and the consumer, with the events
 * that flow between them and the order of shutdown (stop pulling → finish
 * in-flight work → stop the rule cache). Pure: every actor but the rule-cache
 * machine is provided by the composition root.
 */
import { assign, fromCallback, sendTo, setup, type AnyEventObject } from "xstate";
import { ruleCacheMachine, type RuleCacheInput } from "./rule-cache.machine.js";

export type ServiceEvent =
  /** KV `concurrency` (a number or `auto`), `concurrency_min` or `concurrency_max`. */
  | { type: "CONFIG.CONCURRENCY"; key: "concurrency"; value: number | "auto" }
  | { type: "CONFIG.CONCURRENCY"; key: "concurrency_min" | "concurrency_max"; value: number }
  | { type: "CONFIG.REFRESH_INTERVAL"; ms: number }
  | { type: "RULES.CHANGED"; full?: boolean }
  | { type: "CONSUMER.DRAINED" }
  | { type: "CONSUMER.FAILED"; error: string }
  | { type: "STOP" };

export interface ServiceInput {
  readonly ruleCache: RuleCacheInput;
  /** Longest wait for in-flight messages to settle once stopping. */
  readonly drainTimeoutMs: number;
}

export interface ServiceContext extends ServiceInput {
  /** Why the service stopped other than by request, if it did. */
  readonly failure: string | null;
}

/** Placeholder for an actor the composition root provides. */
const provided = (name: string) =>
  fromCallback<AnyEventObject>(() => {
    throw new Error(`${name} is provided by the composition root`);
  });

export const serviceMachine = setup({
  types: { context: {} as ServiceContext, events: {} as ServiceEvent, input: {} as ServiceInput },
  actors: {
    ruleCache: ruleCacheMachine,
    configWatcher: provided("configWatcher"),
    changeNotices: provided("changeNotices"),
    consumer: provided("consumer"),
    exhaustedWorker: provided("exhaustedWorker"),
    lagPoller: provided("lagPoller"),
    explainEndpoint: provided("explainEndpoint"),
  },
  delays: { drainTimeout: ({ context }) => context.drainTimeoutMs },
}).createMachine({
  id: "tortmatch",
  context: ({ input }) => ({ ...input, failure: null }),
  invoke: [
    { id: "ruleCache", systemId: "ruleCache", src: "ruleCache", input: ({ context }) => context.ruleCache, onDone: ".stopped" },
    { id: "configWatcher", systemId: "configWatcher", src: "configWatcher" },
    { id: "changeNotices", systemId: "changeNotices", src: "changeNotices" },
    { id: "consumer", systemId: "consumer", src: "consumer" },
    { id: "exhaustedWorker", systemId: "exhaustedWorker", src: "exhaustedWorker" },
    { id: "lagPoller", systemId: "lagPoller", src: "lagPoller" },
    { id: "explainEndpoint", systemId: "explainEndpoint", src: "explainEndpoint" },
  ],
  on: {
    "CONFIG.CONCURRENCY": { actions: sendTo("consumer", ({ event }) => event) },
    "CONFIG.REFRESH_INTERVAL": { actions: sendTo("ruleCache", ({ event }) => event) },
    "RULES.CHANGED": { actions: sendTo("ruleCache", ({ event }) => ({ type: "REFRESH" as const, reason: "notice" as const, full: event.full === true })) },
  },
  initial: "running",
  states: {
    running: {
      entry: sendTo("ruleCache", { type: "START" }),
      on: {
        STOP: "draining",
        "CONSUMER.FAILED": { target: "closing", actions: assign({ failure: ({ event }) => event.error }) },
      },
    },
    draining: {
      entry: sendTo("consumer", { type: "DRAIN" }),
      on: {
        "CONSUMER.DRAINED": "closing",
        "CONSUMER.FAILED": { target: "closing", actions: assign({ failure: ({ event }) => event.error }) },
      },
      after: {
        drainTimeout: { target: "closing", actions: assign({ failure: "in-flight messages did not settle before the drain timeout" }) },
      },
    },
    closing: {
      entry: sendTo("ruleCache", { type: "STOP" }),
    },
    stopped: { type: "final" },
  },
});
