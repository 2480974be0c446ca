/** The service machine with every actor provided in the test and a simulated clock: the shutdown order and its bounds. */
import { describe, expect, it } from "vitest";
import { createActor, fromCallback, fromPromise, SimulatedClock, type AnyEventObject } from "xstate";
import { ruleCacheMachine, type LoadRulesInput } from "../../machines/rule-cache.machine.js";
import { serviceMachine } from "../../machines/service.machine.js";
import type { RuleSnapshot } from "../../src/match/snapshot.js";

const settle = () => new Promise((resolve) => setImmediate(resolve));

function harness() {
  const events: string[] = [];
  let consumerBack: ((e: AnyEventObject) => void) | undefined;
  const quiet = fromCallback(() => () => {});
  const machine = serviceMachine.provide({
    actors: {
      ruleCache: ruleCacheMachine.provide({
        actors: {
          loadRules: fromPromise<RuleSnapshot, LoadRulesInput>(async () => ({ version: "v1", loadKind: "full", loadedAt: "2026-01-01T00:00:00.000Z" }) as RuleSnapshot),
          closeRules: fromPromise<void, void>(async () => {
            events.push("closeRules");
          }),
        },
      }),
      configWatcher: quiet,
      changeNotices: quiet,
      exhaustedWorker: fromCallback(() => () => events.push("exhaustedWorker stopped")),
      lagPoller: quiet,
      explainEndpoint: quiet,
      consumer: fromCallback(({ sendBack, receive }) => {
        consumerBack = sendBack;
        receive((e) => events.push(`consumer got ${e.type}`));
        return () => events.push("consumer stopped");
      }),
    },
  });
  const clock = new SimulatedClock();
  const actor = createActor(machine, {
    clock,
    input: { ruleCache: { refreshIntervalMs: 0, fullReloadEvery: 10, retryBaseMs: 100, retryMaxMs: 1_000, minRefreshGapMs: 0 }, drainTimeoutMs: 20_000 },
  });
  actor.start();
  return { actor, clock, events, consumer: (e: AnyEventObject) => consumerBack!(e), state: () => JSON.stringify(actor.getSnapshot().value) };
}

describe("service machine", () => {
  it("stops in order: drain the consumer, then stop the rule cache (which closes the rule source)", async () => {
    const h = harness();
    await settle();
    h.actor.send({ type: "STOP" });
    expect(h.state()).toBe('"draining"');
    expect(h.events).toEqual(["consumer got DRAIN"]);
    h.consumer({ type: "CONSUMER.DRAINED" });
    await settle();
    expect(h.actor.getSnapshot().status).toBe("done");
    expect(h.actor.getSnapshot().context.failure).toBeNull();
    expect(h.events.indexOf("consumer got DRAIN")).toBeLessThan(h.events.indexOf("closeRules"));
  });

  it("gives up on in-flight work at the drain timeout, and says so", async () => {
    const h = harness();
    await settle();
    h.actor.send({ type: "STOP" });
    h.clock.increment(19_999);
    expect(h.state()).toBe('"draining"');
    expect(h.events).not.toContain("closeRules");
    h.clock.increment(1);
    await settle();
    expect(h.actor.getSnapshot().status).toBe("done");
    expect(h.actor.getSnapshot().context.failure).toBe("in-flight messages did not settle before the drain timeout");
    expect(h.events).toContain("closeRules");
  });

  it("a consumer failure stops the service with its reason, without waiting for a drain", async () => {
    const h = harness();
    await settle();
    h.consumer({ type: "CONSUMER.FAILED", error: "wait buffer overflow" });
    await settle();
    expect(h.actor.getSnapshot().status).toBe("done");
    expect(h.actor.getSnapshot().context.failure).toBe("wait buffer overflow");
    expect(h.events).toContain("closeRules");
    expect(h.events).toContain("consumer stopped");
    expect(h.events).toContain("exhaustedWorker stopped");
  });

  it("a consumer failure while draining ends the drain with that reason", async () => {
    const h = harness();
    await settle();
    h.actor.send({ type: "STOP" });
    h.consumer({ type: "CONSUMER.FAILED", error: "pull loop defect" });
    await settle();
    expect(h.actor.getSnapshot().context.failure).toBe("pull loop defect");
    expect(h.actor.getSnapshot().status).toBe("done");
  });
});
