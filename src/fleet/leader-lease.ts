/**
 * The fleet's leader lease in KV `tort_rules`, key `leader` (spec section 9).
 * Server 2.9 has no per-key TTL, so the value carries its own expiry: the
 * holder renews it every third of the lease by compare-and-set on the
 * revision it last wrote; anyone takes it over by compare-and-set once the
 * expiry has passed; a holder that stops releases it (expiry 0) so a
 * successor need not wait. Clocks are compared across instances: keep them
 * within a small fraction of the lease (NTP does).
 *
 * Holding the lease means producing versions (spec section 9). An instance that cannot lead now
 * (`canLead`: it cannot read the rule tables, or a notice went unanswered for a lease) steps aside
 * only while another instance reports that it can (`othersCanLead`), and leaves a free lease to such
 * instances for one lease period before it takes it itself. So a leader that cannot read gives way
 * to one that can, and a lone instance (or a fleet none of whose instances can read) keeps its
 * leader, which keeps retrying: its refreshes resume when the tables come back.
 */
import type { KV } from "@nats-io/kv";
import type { Logger } from "pino";
import { LEADER_KEY } from "./rules-bucket.js";

export interface LeaseValue {
  readonly holder: string;
  /** Epoch ms after which anyone may take the lease over. */
  readonly expiresAtMs: number;
}

export type FleetRole = "leader" | "follower";

export interface LeaderLease {
  isLeader(): boolean;
  /** Whether the lease in KV is ours and unexpired now (read from the server, not from the last round). */
  confirm(): Promise<boolean>;
  /** The holder as last read (null when none or unknown). */
  holder(): string | null;
  /** Stop renewing; a leader releases the lease so a successor takes over at once. */
  release(): Promise<void>;
}

function parseLease(value: Uint8Array): LeaseValue | null {
  try {
    const v = JSON.parse(new TextDecoder().decode(value)) as Partial<LeaseValue>;
    return typeof v?.holder === "string" && typeof v.expiresAtMs === "number" ? (v as LeaseValue) : null;
  } catch {
    return null;
  }
}

export interface LeaderLeaseOptions {
  readonly holder: string;
  readonly leaseMs: number;
  readonly onRole: (role: FleetRole) => void;
  readonly log: Logger;
  readonly now?: () => number;
  /** Whether this instance can produce versions now (read the tables); assumed when not given. */
  readonly canLead?: () => boolean;
  /** Whether another running instance reports that it can; asked only while this one cannot. */
  readonly othersCanLead?: () => Promise<boolean>;
}

export function startLeaderLease(kv: KV, options: LeaderLeaseOptions): LeaderLease {
  const { holder, leaseMs, log } = options;
  const now = options.now ?? Date.now;
  let leader = false;
  let lastHolder: string | null = null;
  /** When our own lease runs out, as we last wrote it. */
  let ownExpiry = 0;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  /** When this instance first saw the lease free (expired or released), by its own clock; null while held. */
  let freeSince: number | null = null;
  const canLead = options.canLead ?? (() => true);
  const othersCanLead = options.othersCanLead ?? (async () => false);

  const setRole = (next: boolean) => {
    if (next === leader) return;
    leader = next;
    log.info({ holder, role: next ? "leader" : "follower" }, next ? "fleet lease taken: this instance reads the rules for the fleet" : "fleet lease lost: following the leader");
    options.onRole(next ? "leader" : "follower");
  };
  const value = (expiresAtMs: number) => JSON.stringify({ holder, expiresAtMs } satisfies LeaseValue);
  /** The lease key's entry (for its revision) and the lease it holds, if it holds one. */
  const readLease = async () => {
    const entry = await kv.get(LEADER_KEY);
    return { entry, current: entry !== null && entry.operation === "PUT" ? parseLease(entry.value) : null };
  };

  /** One round: renew, take over, or follow. Every write is a compare-and-set on the revision read. */
  const step = async () => {
    const t = now();
    try {
      const { entry, current } = await readLease();
      lastHolder = current !== null && current.expiresAtMs > t ? current.holder : null;
      const mine = current?.holder === holder && leader;
      const free = current === null || current.expiresAtMs <= t;
      freeSince = free ? (freeSince ?? t) : null;
      if (mine && !canLead() && (await othersCanLead())) {
        // Give way: mark the lease run out; an instance that can read takes it at its next round.
        await kv.update(LEADER_KEY, value(0), entry!.revision).catch(() => {});
        log.warn({ holder }, "fleet lease handed over: this instance cannot read the rule tables and another instance can");
        freeSince = t;
        setRole(false);
        return;
      }
      // A free lease is left to the instances that can read for one lease period.
      const yieldFree = !mine && free && !canLead() && t - freeSince! < leaseMs;
      if (!yieldFree && (current === null || mine || free)) {
        const expiresAtMs = t + leaseMs;
        try {
          if (entry === null) await kv.create(LEADER_KEY, value(expiresAtMs));
          else await kv.update(LEADER_KEY, value(expiresAtMs), entry.revision);
          ownExpiry = expiresAtMs;
          lastHolder = holder;
          setRole(true);
          return;
        } catch {
          // Another instance wrote first: it holds the lease.
        }
      }
      setRole(false);
    } catch (err) {
      // NATS cannot answer: nobody else can take the lease over before it expires either.
      log.warn({ err: (err as Error).message }, "fleet lease could not be read");
      if (leader && now() >= ownExpiry) setRole(false);
    }
  };
  const tick = () => {
    if (stopped) return;
    running = step().finally(() => {
      if (!stopped) timer = setTimeout(tick, Math.max(50, Math.floor(leaseMs / 3)));
    });
  };
  // The first round always reports a role, even follower (setRole reports changes only): a starting rule cache waits for it.
  const firstRound = step().then(() => {
    if (!leader) options.onRole("follower");
  });
  running = firstRound;
  void firstRound.finally(() => {
    if (!stopped) timer = setTimeout(tick, Math.max(50, Math.floor(leaseMs / 3)));
  });

  /** Mark our lease as run out (expiry 0), if it is still ours. */
  const handOver = async () => {
    try {
      const { entry, current } = await readLease();
      if (entry !== null && current?.holder === holder) await kv.update(LEADER_KEY, value(0), entry.revision);
    } catch (err) {
      log.warn({ err: (err as Error).message }, "fleet lease could not be released; it expires by itself");
    }
  };

  return {
    isLeader: () => leader,
    holder: () => lastHolder,
    async confirm() {
      if (!leader) return false;
      const { current } = await readLease();
      return current?.holder === holder && current.expiresAtMs > now();
    },
    async release() {
      stopped = true;
      clearTimeout(timer);
      await running.catch(() => {});
      if (!leader) return;
      await handOver();
      leader = false;
    },
  };
}
