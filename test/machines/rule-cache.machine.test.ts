import { describe, expect, it } from "vitest";
import { createActor, fromPromise, SimulatedClock } from "xstate";
import { retryDelayMs, ruleCacheMachine, type LoadRulesInput } from "../../machines/rule-cache.machine.js";
import type { RuleSnapshot } from "../../src/match/snapshot.js";

interface PendingLoad {
  input: LoadRulesInput;
  signal: AbortSignal;
  resolve(s: RuleSnapshot): void;
  reject(e: Error): void;
}

const snapshotNamed = (version: string, loadKind: "full" | "incremental" = "full") =>
  ({ version, loadKind, loadedAt: "2026-11-28T00:00:00.000Z" }) as RuleSnapshot;
const settle = () => new Promise((resolve) => setImmediate(resolve));

interface Pending<I, O> {
  input: I;
  resolve(o: O): void;
  reject(e: Error): void;
}

function harness(options: { refreshIntervalMs?: number; fullReloadEvery?: number; minRefreshGapMs?: number; fleet?: boolean } = {}) {
  const loads: PendingLoad[] = [];
  const fetches: Pending<{ version: string }, RuleSnapshot>[] = [];
  const publishes: Pending<{ snapshot: RuleSnapshot }, void>[] = [];
  let closed = 0;
  const visited = new Set<string>();
  const clock = new SimulatedClock();
  const machine = ruleCacheMachine.provide({
    actors: {
      loadRules: fromPromise<RuleSnapshot, LoadRulesInput>(
        ({ input, signal }) => new Promise((resolve, reject) => loads.push({ input, signal, resolve, reject })),
      ),
      closeRules: fromPromise<void, void>(async () => {
        closed++;
      }),
      fetchSnapshot: fromPromise<RuleSnapshot, { version: string }>(({ input }) => new Promise((resolve, reject) => fetches.push({ input, resolve, reject }))),
      publishSnapshot: fromPromise<void, { snapshot: RuleSnapshot }>(({ input }) => new Promise((resolve, reject) => publishes.push({ input, resolve, reject }))),
    },
    // Deterministic jitter: the middle of the range.
    delays: { retryDelay: ({ context }) => retryDelayMs(context.attempt, context.retryBaseMs, context.retryMaxMs, () => 0.5) },
  });
  const actor = createActor(machine, {
    clock,
    input: { refreshIntervalMs: options.refreshIntervalMs ?? 60_000, fullReloadEvery: options.fullReloadEvery ?? 3, retryBaseMs: 1_000, retryMaxMs: 8_000, minRefreshGapMs: options.minRefreshGapMs ?? 0, fleet: options.fleet ?? false, leaderWaitMs: 5_000 },
  });
  actor.subscribe((s) => visited.add(String(s.value)));
  actor.start();
  return { actor, clock, loads, fetches, publishes, visited, closedCount: () => closed, state: () => String(actor.getSnapshot().value), ctx: () => actor.getSnapshot().context };
}

describe("rule-cache machine", () => {
  it("loads exactly once whatever arrives during the load, then refreshes once for what was asked meanwhile", async () => {
    const h = harness();
    h.actor.send({ type: "START" });
    for (let k = 0; k < 64; k++) h.actor.send({ type: "REFRESH", reason: "notice" });
    h.actor.send({ type: "START" });
    expect(h.state()).toBe("loading");
    expect(h.loads).toHaveLength(1);
    expect(h.loads[0]!.input).toEqual({ mode: "full", previous: null });

    const first = snapshotNamed("v1");
    h.loads[0]!.resolve(first);
    await settle();
    // The notices asked during the load become one incremental refresh, against v1.
    expect(h.state()).toBe("refreshing");
    expect(h.loads).toHaveLength(2);
    expect(h.loads[1]!.input).toEqual({ mode: "incremental", previous: first });
    expect(h.ctx().snapshot).toBe(first); // v1 serves while refreshing

    h.loads[1]!.resolve(snapshotNamed("v2", "incremental"));
    await settle();
    expect(h.state()).toBe("ready");
    expect(h.ctx()).toMatchObject({ version: "v2", loads: 2, refreshesSinceFull: 1, refreshPending: false, attempt: 0 });
  });

  it("retries a failed first load with capped exponential backoff until it succeeds", async () => {
    const h = harness();
    h.actor.send({ type: "START" });
    const delays: number[] = [];
    for (let attempt = 1; attempt <= 5; attempt++) {
      h.loads[attempt - 1]!.reject(new Error(`ECONNREFUSED ${attempt}`));
      await settle();
      expect(h.state()).toBe("retrying");
      expect(h.ctx()).toMatchObject({ attempt, lastError: `ECONNREFUSED ${attempt}`, snapshot: null });
      // Find the delay: nothing happens 1 ms before it, the retry starts at it.
      const delay = retryDelayMs(attempt, 1_000, 8_000, () => 0.5);
      delays.push(delay);
      h.clock.increment(delay - 1);
      expect(h.state()).toBe("retrying");
      h.clock.increment(1);
      expect(h.state()).toBe("loading");
    }
    expect(delays).toEqual([750, 1500, 3000, 6000, 6000]);
    h.loads[5]!.resolve(snapshotNamed("v1"));
    await settle();
    expect(h.ctx()).toMatchObject({ attempt: 0, lastError: null, version: "v1", loads: 6 });
  });

  it("refreshes on its timer; a failed refresh keeps the old snapshot and retries as a refresh", async () => {
    const h = harness({ refreshIntervalMs: 10_000, fullReloadEvery: 3 });
    h.actor.send({ type: "START" });
    const v1 = snapshotNamed("v1");
    h.loads[0]!.resolve(v1);
    await settle();
    h.clock.increment(9_999);
    expect(h.state()).toBe("ready");
    h.clock.increment(1);
    expect(h.state()).toBe("refreshing");
    h.loads[1]!.reject(new Error("server has gone away"));
    await settle();
    expect(h.state()).toBe("retrying");
    expect(h.ctx().snapshot).toBe(v1);
    h.clock.increment(750);
    expect(h.state()).toBe("refreshing");
    expect(h.loads[2]!.input).toEqual({ mode: "incremental", previous: v1 });
    h.loads[2]!.resolve(snapshotNamed("v2", "incremental"));
    await settle();
    // Every third refresh is a full reload.
    h.clock.increment(10_000);
    h.loads[3]!.resolve(snapshotNamed("v3", "incremental"));
    await settle();
    h.clock.increment(10_000);
    expect(h.loads[4]!.input.mode).toBe("full");
  });

  it("takes a new refresh interval at once; 0 turns the timer off", async () => {
    const h = harness({ refreshIntervalMs: 10_000 });
    h.actor.send({ type: "START" });
    h.loads[0]!.resolve(snapshotNamed("v1"));
    await settle();
    h.clock.increment(5_000);
    h.actor.send({ type: "CONFIG.REFRESH_INTERVAL", ms: 0 });
    h.clock.increment(3_600_000);
    expect(h.state()).toBe("ready");
    expect(h.loads).toHaveLength(1);
    h.actor.send({ type: "CONFIG.REFRESH_INTERVAL", ms: 2_000 });
    h.clock.increment(2_000);
    expect(h.state()).toBe("refreshing");
    expect(h.ctx().refreshIntervalMs).toBe(2_000);
  });

  it("a flood of notices makes at most one refresh per minimum gap", async () => {
    const h = harness({ refreshIntervalMs: 0, minRefreshGapMs: 1_000 });
    h.actor.send({ type: "START" });
    h.loads[0]!.resolve(snapshotNamed("v1"));
    await settle();
    for (let k = 0; k < 500; k++) h.actor.send({ type: "REFRESH", reason: "notice" });
    expect(h.state()).toBe("ready"); // within the gap after the load: remembered, not started
    expect(h.loads).toHaveLength(1);
    h.clock.increment(999);
    expect(h.loads).toHaveLength(1);
    h.clock.increment(1);
    expect(h.state()).toBe("refreshing");
    expect(h.loads).toHaveLength(2);
    h.loads[1]!.resolve(snapshotNamed("v2", "incremental"));
    await settle();
    // 10 seconds of notices every 10 ms: one refresh per gap, never more.
    for (let ms = 0; ms < 10_000; ms += 10) {
      h.actor.send({ type: "REFRESH", reason: "notice" });
      h.clock.increment(10);
      const open = h.loads.at(-1)!;
      if (h.state() === "refreshing" && !(open as { done?: boolean }).done) {
        (open as { done?: boolean }).done = true;
        open.resolve(snapshotNamed(`v${h.loads.length + 1}`, "incremental"));
        await settle();
      }
    }
    expect(h.loads.length).toBeGreaterThanOrEqual(10);
    expect(h.loads.length).toBeLessThanOrEqual(2 + 10);
    // Once the gap has passed, a notice starts a refresh at once.
    h.clock.increment(5_000);
    await settle();
    const before = h.loads.length;
    h.actor.send({ type: "REFRESH", reason: "notice" });
    expect(h.loads).toHaveLength(before + 1);
  });

  it("a notice asking for a full reload makes the next refresh full, even after a failure", async () => {
    const h = harness({ refreshIntervalMs: 0, fullReloadEvery: 100 });
    h.actor.send({ type: "START" });
    h.loads[0]!.resolve(snapshotNamed("v1"));
    await settle();
    h.actor.send({ type: "REFRESH", reason: "notice" });
    expect(h.loads[1]!.input.mode).toBe("incremental");
    h.loads[1]!.resolve(snapshotNamed("v2", "incremental"));
    await settle();
    h.actor.send({ type: "REFRESH", reason: "manual", full: true });
    expect(h.loads[2]!.input.mode).toBe("full");
    h.loads[2]!.reject(new Error("lost connection"));
    await settle();
    h.clock.increment(1_000);
    expect(h.state()).toBe("refreshing");
    expect(h.loads[3]!.input.mode).toBe("full");
  });

  it("stops from any state: a running load is aborted and the rule source closed", async () => {
    const h = harness();
    h.actor.send({ type: "START" });
    h.actor.send({ type: "STOP" });
    await settle();
    expect(h.loads[0]!.signal.aborted).toBe(true);
    expect(h.state()).toBe("stopped");
    expect(h.closedCount()).toBe(1);
    expect(h.actor.getSnapshot().status).toBe("done");

    const idle = harness();
    idle.actor.send({ type: "STOP" });
    await settle();
    expect(idle.state()).toBe("stopped");
  });

  it("the scenarios above visit every state", async () => {
    const seen = new Set<string>();
    const h = harness({ refreshIntervalMs: 1_000 });
    h.actor.send({ type: "START" });
    h.loads[0]!.reject(new Error("x"));
    await settle();
    h.clock.increment(1_000);
    h.loads[1]!.resolve(snapshotNamed("v1"));
    await settle();
    h.clock.increment(1_000);
    h.actor.send({ type: "STOP" });
    await settle();
    h.visited.forEach((v) => seen.add(v));
    // The fleet's states, as a follower and then as the leader.
    const f = harness({ fleet: true });
    f.actor.send({ type: "START" });
    f.actor.send({ type: "FLEET.ROLE", role: "follower" });
    f.actor.send({ type: "FLEET.CURRENT", version: "v1" });
    f.fetches[0]!.resolve(snapshotNamed("v1"));
    await settle();
    f.actor.send({ type: "FLEET.ROLE", role: "leader" });
    f.loads[0]!.resolve(snapshotNamed("v2", "incremental"));
    await settle();
    expect(f.state()).toBe("publishing");
    f.visited.forEach((v) => seen.add(v));
    expect([...seen].sort()).toEqual(Object.keys(ruleCacheMachine.config.states!).sort());
  });
});

/** A fleet instance that leads: it read `version` from MySQL and has published it. */
async function servingLeader(version: string) {
  const h = harness({ fleet: true });
  h.actor.send({ type: "START" });
  h.actor.send({ type: "FLEET.ROLE", role: "leader" });
  h.loads[0]!.resolve(snapshotNamed(version));
  await settle();
  h.publishes[0]!.resolve();
  await settle();
  return h;
}

describe("rule-cache machine in a fleet", () => {
  it("a follower waits for the announcement, fetches each announced version and never reads MySQL", async () => {
    const h = harness({ fleet: true });
    h.actor.send({ type: "START" });
    expect(h.state()).toBe("awaitingLeader");
    h.actor.send({ type: "FLEET.ROLE", role: "follower" });
    expect(h.state()).toBe("awaitingLeader");
    h.actor.send({ type: "FLEET.CURRENT", version: "v1" });
    expect(h.state()).toBe("fetching");
    expect(h.fetches[0]!.input).toEqual({ version: "v1" });
    // Announcements and notices during the fetch start nothing more.
    h.actor.send({ type: "FLEET.CURRENT", version: "v2" });
    h.actor.send({ type: "REFRESH", reason: "notice" });
    h.fetches[0]!.resolve(snapshotNamed("v1"));
    await settle();
    // v2 was announced meanwhile: fetched next, one at a time.
    expect(h.state()).toBe("fetching");
    expect(h.fetches).toHaveLength(2);
    expect(h.fetches[1]!.input).toEqual({ version: "v2" });
    h.fetches[1]!.resolve(snapshotNamed("v2"));
    await settle();
    expect(h.state()).toBe("ready");
    expect(h.ctx()).toMatchObject({ version: "v2", source: "fleet", loads: 0, fetches: 2, role: "follower" });
    // A notice and the refresh timer are the leader's business.
    h.actor.send({ type: "REFRESH", reason: "notice" });
    h.clock.increment(120_000);
    await settle();
    expect(h.state()).toBe("ready");
    expect(h.loads).toHaveLength(0);
  });

  it("a starting follower waits a bounded time for a leader, then loads the rules itself", async () => {
    const h = harness({ fleet: true });
    h.actor.send({ type: "START" });
    h.actor.send({ type: "FLEET.ROLE", role: "follower" });
    h.clock.increment(4_999);
    expect(h.loads).toHaveLength(0);
    h.clock.increment(1);
    expect(h.state()).toBe("loading");
    h.loads[0]!.resolve(snapshotNamed("v1"));
    await settle();
    expect(h.ctx()).toMatchObject({ version: "v1", source: "database" });
    // A follower does not publish; when the leader announces the same version nothing is fetched.
    expect(h.publishes).toHaveLength(0);
    h.actor.send({ type: "FLEET.CURRENT", version: "v1" });
    expect(h.state()).toBe("ready");
    expect(h.fetches).toHaveLength(0);
  });

  it("the leader reads MySQL once, serves it at once and publishes; a refresh that changes nothing is not published", async () => {
    const h = harness({ fleet: true });
    h.actor.send({ type: "START" });
    h.actor.send({ type: "FLEET.ROLE", role: "leader" });
    expect(h.state()).toBe("loading");
    const v1 = snapshotNamed("v1");
    h.loads[0]!.resolve(v1);
    await settle();
    expect(h.state()).toBe("publishing");
    expect(h.ctx().snapshot).toBe(v1); // served while it is published
    expect(h.publishes[0]!.input.snapshot).toBe(v1);
    h.actor.send({ type: "REFRESH", reason: "notice" }); // kept for after the publish
    h.publishes[0]!.resolve();
    await settle();
    expect(h.state()).toBe("refreshing");
    expect(h.ctx().announced).toBe("v1");
    expect(h.loads[1]!.input).toEqual({ mode: "incremental", previous: v1 });
    h.loads[1]!.resolve(snapshotNamed("v1", "incremental"));
    await settle();
    expect(h.state()).toBe("ready");
    expect(h.publishes).toHaveLength(1);
    h.actor.send({ type: "REFRESH", reason: "notice" });
    h.loads[2]!.resolve(snapshotNamed("v2", "incremental"));
    await settle();
    expect(h.state()).toBe("publishing");
    // A failed publish leaves the new snapshot served and says why.
    h.publishes[1]!.reject(new Error("object store unavailable"));
    await settle();
    expect(h.ctx()).toMatchObject({ version: "v2", publishError: "object store unavailable" });
    expect(h.state()).toBe("ready");
  });

  it("a failed fetch falls back to MySQL (one load), and the failed version is not fetched again", async () => {
    const h = harness({ fleet: true });
    h.actor.send({ type: "START" });
    h.actor.send({ type: "FLEET.ROLE", role: "follower" });
    h.actor.send({ type: "FLEET.CURRENT", version: "v1" });
    h.fetches[0]!.reject(new Error("checksum mismatch"));
    await settle();
    expect(h.state()).toBe("loading");
    expect(h.ctx().lastError).toMatch(/checksum mismatch/);
    h.loads[0]!.resolve(snapshotNamed("v1"));
    await settle();
    expect(h.state()).toBe("ready");
    h.actor.send({ type: "FLEET.CURRENT", version: "v2" });
    h.fetches[1]!.reject(new Error("not in the snapshot store"));
    await settle();
    // It has a snapshot: the fallback is a refresh from it.
    expect(h.state()).toBe("refreshing");
    expect(h.loads[1]!.input.previous?.version).toBe("v1");
    h.loads[1]!.resolve(snapshotNamed("v2", "incremental"));
    await settle();
    expect(h.state()).toBe("ready");
    expect(h.fetches).toHaveLength(2);
    expect(h.ctx()).toMatchObject({ version: "v2", source: "database" });
    // v3 announced; its object refused; the tables meanwhile hold other rows (v3b). The leader then
    // confirms v3 every refresh interval: the refused object is not fetched again for that.
    h.actor.send({ type: "FLEET.CURRENT", version: "v3" });
    h.fetches[2]!.reject(new Error("the object's bytes do not match the SHA-256 its announcement names"));
    await settle();
    h.loads[2]!.resolve(snapshotNamed("v3b", "incremental"));
    await settle();
    h.actor.send({ type: "FLEET.CURRENT", version: "v3" });
    h.actor.send({ type: "FLEET.CURRENT", version: "v3" });
    expect(h.fetches).toHaveLength(3);
    // A new version is fetched as usual.
    h.actor.send({ type: "FLEET.CURRENT", version: "v4" });
    expect(h.fetches).toHaveLength(4);
  });

  it("a pinned version is served while it exists; unpinned, the leader serves its own newest read again", async () => {
    const h = await servingLeader("v2");
    h.actor.send({ type: "FLEET.PINNED", version: "v1" });
    expect(h.state()).toBe("fetching");
    h.fetches[0]!.resolve(snapshotNamed("v1"));
    await settle();
    expect(h.ctx()).toMatchObject({ version: "v1", pinned: "v1", source: "fleet" });
    // The leader still reads and announces new versions; the pin stays served.
    h.actor.send({ type: "REFRESH", reason: "notice" });
    h.loads[1]!.resolve(snapshotNamed("v3", "incremental"));
    await settle();
    expect(h.publishes[1]!.input.snapshot.version).toBe("v3");
    h.publishes[1]!.resolve();
    await settle();
    expect(h.ctx().version).toBe("v1");
    h.actor.send({ type: "FLEET.PINNED", version: null });
    expect(h.ctx()).toMatchObject({ version: "v3", pinned: null, source: "database" });
    expect(h.fetches).toHaveLength(1);
  });

  it("a follower whose pinned version cannot be fetched ignores the pin: it serves the announced version, without reading MySQL", async () => {
    const h = harness({ fleet: true });
    h.actor.send({ type: "START" });
    h.actor.send({ type: "FLEET.ROLE", role: "follower" });
    h.actor.send({ type: "FLEET.CURRENT", version: "v2" });
    h.fetches[0]!.resolve(snapshotNamed("v2"));
    await settle();
    h.actor.send({ type: "FLEET.PINNED", version: "v0" });
    h.fetches[1]!.reject(new Error("rules version v0 is not in the snapshot store"));
    await settle();
    expect(h.state()).toBe("ready");
    expect(h.ctx()).toMatchObject({ version: "v2", pinIgnored: "v0" });
    expect(h.loads).toHaveLength(0);
    // The ignored pin stands, and the fleet follows the tables: the next announcement is fetched.
    h.actor.send({ type: "FLEET.CURRENT", version: "v3" });
    expect(h.state()).toBe("fetching");
    expect(h.fetches[2]!.input.version).toBe("v3");
    h.fetches[2]!.resolve(snapshotNamed("v3"));
    await settle();
    expect(h.ctx()).toMatchObject({ version: "v3", pinned: "v0", pinIgnored: "v0" });
    // Unpinned: back to the announced version, which it already serves.
    h.actor.send({ type: "FLEET.PINNED", version: null });
    expect(h.state()).toBe("ready");
    expect(h.ctx().pinIgnored).toBeNull();
    expect(h.fetches).toHaveLength(3);
  });

  it("a leader whose pinned version cannot be fetched ignores the pin: it serves, reads and announces the tables' newest", async () => {
    const h = await servingLeader("v2");
    h.actor.send({ type: "FLEET.PINNED", version: "broken" });
    expect(h.state()).toBe("fetching");
    h.fetches[0]!.reject(new Error("rules version broken: the object's bytes do not match the SHA-256 its announcement names"));
    await settle();
    expect(h.state()).toBe("ready");
    expect(h.ctx()).toMatchObject({ version: "v2", source: "database", pinIgnored: "broken" });
    // A rule change and a notice: read, served and announced, pin or not.
    h.actor.send({ type: "REFRESH", reason: "notice" });
    h.loads[1]!.resolve(snapshotNamed("v3", "incremental"));
    await settle();
    expect(h.ctx().version).toBe("v3");
    expect(h.publishes[1]!.input.snapshot.version).toBe("v3");
    h.publishes[1]!.resolve();
    await settle();
    // A new pin gets a try of its own.
    h.actor.send({ type: "FLEET.PINNED", version: "v2" });
    expect(h.state()).toBe("fetching");
    expect(h.ctx().pinIgnored).toBeNull();
  });

  it("a leader that loses the lease while its refresh is retried leaves refreshes to the new leader: no more loads", async () => {
    const h = await servingLeader("v1");
    h.actor.send({ type: "REFRESH", reason: "notice" });
    h.loads[1]!.reject(new Error("ECONNREFUSED"));
    await settle();
    expect(h.state()).toBe("retrying");
    h.actor.send({ type: "FLEET.ROLE", role: "follower" });
    h.clock.increment(60_000);
    await settle();
    expect(h.state()).toBe("ready");
    expect(h.loads).toHaveLength(2);
    expect(h.ctx()).toMatchObject({ version: "v1", role: "follower" });
    // The new leader's announcement is fetched as usual.
    h.actor.send({ type: "FLEET.CURRENT", version: "v2" });
    expect(h.state()).toBe("fetching");
  });

  it("isolated (another deployment's rules in the bucket), a follower reads and refreshes by itself and ignores the fleet", async () => {
    const h = harness({ fleet: true });
    h.actor.send({ type: "START" });
    h.actor.send({ type: "FLEET.ROLE", role: "follower" });
    h.actor.send({ type: "FLEET.ISOLATE" });
    expect(h.state()).toBe("loading");
    h.loads[0]!.resolve(snapshotNamed("own"));
    await settle();
    h.actor.send({ type: "FLEET.CURRENT", version: "theirs" });
    h.actor.send({ type: "FLEET.ROLE", role: "follower" });
    expect(h.state()).toBe("ready");
    expect(h.ctx()).toMatchObject({ role: "solo", announced: null, version: "own" });
    h.actor.send({ type: "REFRESH", reason: "notice" });
    expect(h.state()).toBe("refreshing");
    expect(h.fetches).toHaveLength(0);
  });

  it("a follower that takes the lease over refreshes at once from the snapshot it serves", async () => {
    const h = harness({ fleet: true });
    h.actor.send({ type: "START" });
    h.actor.send({ type: "FLEET.ROLE", role: "follower" });
    h.actor.send({ type: "FLEET.CURRENT", version: "v1" });
    const v1 = snapshotNamed("v1");
    h.fetches[0]!.resolve(v1);
    await settle();
    h.actor.send({ type: "FLEET.ROLE", role: "leader" });
    expect(h.state()).toBe("refreshing");
    expect(h.loads[0]!.input).toEqual({ mode: "incremental", previous: v1 });
    h.loads[0]!.resolve(snapshotNamed("v1", "incremental"));
    await settle();
    // Nothing changed while nobody led: nothing to publish.
    expect(h.state()).toBe("ready");
    expect(h.publishes).toHaveLength(0);
  });
});
