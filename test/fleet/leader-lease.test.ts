/**
 * The leader lease on a real KV bucket: one leader among contenders, renewal,
 * hand-over on release, take-over once a lease has run out, and values that
 * are not leases. Then the rules bucket's parsers.
 */
import { Kvm, type KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startLeaderLease, type FleetRole, type LeaderLease } from "../../src/fleet/leader-lease.js";
import { announce, LEADER_KEY, parseAnnouncement, parsePinned } from "../../src/fleet/rules-bucket.js";
import { connectTest, eventually, uniqueNames } from "../support/nats.js";

let nc: NatsConnection;
const buckets: string[] = [];
const log = pino({ level: "silent" });

beforeAll(async () => {
  nc = await connectTest();
});
afterAll(async () => {
  const kvm = new Kvm(nc);
  for (const b of buckets) await (await kvm.open(b)).destroy().catch(() => {});
  await nc.drain();
});

async function bucket(): Promise<KV> {
  const name = uniqueNames().TORT_RULES_BUCKET!;
  buckets.push(name);
  return new Kvm(nc).create(name, { history: 5 });
}

function contender(kv: KV, holder: string, leaseMs: number) {
  const roles: FleetRole[] = [];
  const lease = startLeaderLease(kv, { holder, leaseMs, log, onRole: (r) => roles.push(r) });
  return { holder, lease, roles };
}

describe("leader lease", () => {
  it("a holder that cannot lead hands the lease to one that can, and keeps it while no other can", async () => {
    const kv = await bucket();
    let aCanLead = true;
    let bCanLead = false;
    const roles = { a: [] as FleetRole[], b: [] as FleetRole[] };
    const a = startLeaderLease(kv, { holder: "a", leaseMs: 1_200, log, onRole: (r) => roles.a.push(r), canLead: () => aCanLead, othersCanLead: async () => bCanLead });
    await eventually(() => a.isLeader(), "a leading", 5_000, 10);
    const b = startLeaderLease(kv, { holder: "b", leaseMs: 1_200, log, onRole: (r) => roles.b.push(r), canLead: () => bCanLead, othersCanLead: async () => aCanLead });
    // a cannot read the tables, and neither can b: a keeps the lease (a lone leader keeps retrying).
    aCanLead = false;
    await new Promise((r) => setTimeout(r, 2_000));
    expect([a.isLeader(), b.isLeader()]).toEqual([true, false]);
    // b can: a gives way, and b takes the lease.
    bCanLead = true;
    await eventually(() => b.isLeader() && !a.isLeader(), "b leading", 5_000, 10);
    // b stops and frees the lease: a, still unable to read, leaves it free for a lease to instances that can.
    await b.release();
    await new Promise((r) => setTimeout(r, 600));
    expect(a.isLeader()).toBe(false);
    // Left free for a whole lease with nobody able to read taking it: a takes it, to keep the fleet's refreshes retrying.
    await eventually(() => a.isLeader(), "a leading again once nobody else took the lease", 5_000, 10);
    await a.release();
  });

  it("elects exactly one of several contenders, which keeps the lease by renewing it; a release hands it over at once", async () => {
    const kv = await bucket();
    const all = ["a", "b", "c", "d"].map((h) => contender(kv, h, 1_500));
    await eventually(() => all.every((c) => c.roles.length > 0), "every contender told its role", 5_000, 20);
    expect(all.filter((c) => c.lease.isLeader())).toHaveLength(1);
    const leader = all.find((c) => c.lease.isLeader())!;
    // Three lease lengths later the same one leads: it renewed.
    await new Promise((r) => setTimeout(r, 4_500));
    expect(all.filter((c) => c.lease.isLeader()).map((c) => c.holder)).toEqual([leader.holder]);
    expect(JSON.parse((await kv.get(LEADER_KEY))!.string())).toMatchObject({ holder: leader.holder });
    // Released: the lease is marked run out at once (expiry 0), so the next renewal round of another takes it.
    await leader.lease.release();
    expect(leader.lease.isLeader()).toBe(false);
    const others = all.filter((c) => c !== leader);
    const handed = JSON.parse((await kv.get(LEADER_KEY))!.string()) as { holder: string; expiresAtMs: number };
    expect(handed.holder === leader.holder ? handed.expiresAtMs : 0).toBe(0);
    await eventually(() => others.some((c) => c.lease.isLeader()), "a successor", 5_000, 10);
    expect(others.filter((c) => c.lease.isLeader())).toHaveLength(1);
    for (const c of others) await c.lease.release();
  });

  it("takes over a lease that has run out, and one whose value is not a lease; never one that is still valid", async () => {
    const kv = await bucket();
    await kv.put(LEADER_KEY, JSON.stringify({ holder: "dead", expiresAtMs: Date.now() + 1_000 }));
    const c = contender(kv, "alive", 600);
    await eventually(() => c.roles.length > 0, "a role", 5_000, 20);
    expect(c.lease.isLeader()).toBe(false);
    expect(c.lease.holder()).toBe("dead");
    await eventually(() => c.lease.isLeader(), "the lease taken over once it ran out", 5_000, 20);
    await c.lease.release();
    expect(JSON.parse((await kv.get(LEADER_KEY))!.string())).toEqual({ holder: "alive", expiresAtMs: 0 });

    const kv2 = await bucket();
    await kv2.put(LEADER_KEY, "not json");
    const d = contender(kv2, "next", 600);
    await eventually(() => d.lease.isLeader(), "a garbage lease taken over", 5_000, 20);
    await d.lease.release();
    // A deleted key is free too.
    const kv3 = await bucket();
    await kv3.put(LEADER_KEY, JSON.stringify({ holder: "x", expiresAtMs: Date.now() + 60_000 }));
    await kv3.delete(LEADER_KEY);
    const e = contender(kv3, "after-delete", 600);
    await eventually(() => e.lease.isLeader(), "a deleted lease taken", 5_000, 20);
    await e.lease.release();
  });

  it("two contenders racing for a free lease: compare-and-set lets exactly one win, every time", async () => {
    for (let round = 0; round < 10; round++) {
      const kv = await bucket();
      const pair: { lease: LeaderLease; roles: FleetRole[] }[] = [contender(kv, "x", 5_000), contender(kv, "y", 5_000)];
      await eventually(() => pair.every((c) => c.roles.length > 0), "both told", 5_000, 10);
      expect(pair.filter((c) => c.lease.isLeader())).toHaveLength(1);
      for (const c of pair) await c.lease.release();
    }
  });
});

describe("announcing the current version", () => {
  const announcement = (version: string) => ({ version, object: version, sha256: "ab", bytes: 1, rows: 1, builtAt: "2026-11-29T00:00:00.000Z", builtBy: "x", database: "d" });
  const current = async (kv: KV) => JSON.parse((await kv.get("current"))!.string()).version as string;

  it("writes only while the lease is ours, and never over an announcement written after it looked", async () => {
    const kv = await bucket();
    const ours = { confirm: async () => true };
    await announce(kv, ours, announcement("v1"));
    await announce(kv, ours, announcement("v2"));
    expect(await current(kv)).toBe("v2");
    await expect(announce(kv, { confirm: async () => false }, announcement("v3"))).rejects.toThrow(/lease was lost/);
    expect(await current(kv)).toBe("v2");
    // A successor announces v4 while this (slow, former) leader is between its look and its write.
    const slow = { confirm: async () => (await kv.put("current", JSON.stringify(announcement("v4"))), true) };
    await expect(announce(kv, slow, announcement("v3"))).rejects.toThrow();
    expect(await current(kv)).toBe("v4");
  });
});

describe("rules bucket values", () => {
  const enc = (s: string) => new TextEncoder().encode(s);
  it("reads a pinned version as text or as {version}; empty is no pin", () => {
    expect(parsePinned(enc("2026-11-29T01:09:26.122Z/4995r/172798p"))).toBe("2026-11-29T01:09:26.122Z/4995r/172798p");
    expect(parsePinned(enc(' {"version":"v7"} '))).toBe("v7");
    expect(parsePinned(enc("  "))).toBeNull();
    expect(parsePinned(enc('{"nope":1}'))).toBeNull();
  });
  it("refuses an announcement without version, object and checksum", () => {
    expect(parseAnnouncement(enc('{"version":"v","object":"v","sha256":"ab","database":"d"}'))).toMatchObject({ version: "v" });
    expect(parseAnnouncement(enc('{"version":"v","object":"v","sha256":"ab"}'))).toBeNull();
    expect(parseAnnouncement(enc('{"version":"","object":"v","sha256":"ab"}'))).toBeNull();
    expect(parseAnnouncement(enc('{"version":"v"}'))).toBeNull();
    expect(parseAnnouncement(enc("v1"))).toBeNull();
  });
});
