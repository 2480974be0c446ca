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
  const lease = new HeldLease(kv, options);
  lease.start();
  return lease;
}

/** The lease as one instance holds or follows it: its rounds, its timer, and its hand-over on release. */
class HeldLease implements LeaderLease {
  private readonly holderId: string;
  private readonly leaseMs: number;
  private readonly now: () => number;
  private readonly canLead: () => boolean;
  private readonly othersCanLead: () => Promise<boolean>;
  private leader = false;
  private lastHolder: string | null = null;
  /** When our own lease runs out, as we last wrote it. */
  private ownExpiry = 0;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> = Promise.resolve();
  /** When this instance first saw the lease free (expired or released), by its own clock; null while held. */
  private freeSince: number | null = null;

  constructor(
    private readonly kv: KV,
    private readonly options: LeaderLeaseOptions,
  ) {
    this.holderId = options.holder;
    this.leaseMs = options.leaseMs;
    this.now = options.now ?? Date.now;
    this.canLead = options.canLead ?? (() => true);
    this.othersCanLead = options.othersCanLead ?? (async () => false);
  }

  start(): void {
    // The first round always reports a role, even follower (setRole reports changes only): a starting rule cache waits for it.
    const firstRound = this.step().then(() => {
      if (!this.leader) this.options.onRole("follower");
    });
    this.running = firstRound;
    void firstRound.finally(() => this.scheduleNext());
  }

  isLeader(): boolean {
    return this.leader;
  }

  holder(): string | null {
    return this.lastHolder;
  }

  async confirm(): Promise<boolean> {
    if (!this.leader) return false;
    const { current } = await this.readLease();
    return current?.holder === this.holderId && current.expiresAtMs > this.now();
  }

  async release(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running.catch(() => {});
    if (!this.leader) return;
    await this.handOver();
    this.leader = false;
  }

  private scheduleNext(): void {
    if (!this.stopped) this.timer = setTimeout(() => this.tick(), Math.max(50, Math.floor(this.leaseMs / 3)));
  }

  private tick(): void {
    if (this.stopped) return;
    this.running = this.step().finally(() => this.scheduleNext());
  }

  private setRole(next: boolean): void {
    if (next === this.leader) return;
    this.leader = next;
    this.options.log.info({ holder: this.holderId, role: next ? "leader" : "follower" }, next ? "fleet lease taken: this instance reads the rules for the fleet" : "fleet lease lost: following the leader");
    this.options.onRole(next ? "leader" : "follower");
  }

  private value(expiresAtMs: number): string {
    return JSON.stringify({ holder: this.holderId, expiresAtMs } satisfies LeaseValue);
  }

  /** The lease key's entry (for its revision) and the lease it holds, if it holds one. */
  private async readLease() {
    const entry = await this.kv.get(LEADER_KEY);
    return { entry, current: entry !== null && entry.operation === "PUT" ? parseLease(entry.value) : null };
  }

  /** One round: renew, take over, or follow. Every write is a compare-and-set on the revision read. */
  private async step(): Promise<void> {
    const t = this.now();
    try {
      const { entry, current } = await this.readLease();
      this.lastHolder = current !== null && current.expiresAtMs > t ? current.holder : null;
      const mine = current?.holder === this.holderId && this.leader;
      const free = current === null || current.expiresAtMs <= t;
      this.freeSince = free ? (this.freeSince ?? t) : null;
      if (mine && !this.canLead() && (await this.othersCanLead())) {
        // Give way: mark the lease run out; an instance that can read takes it at its next round.
        await this.kv.update(LEADER_KEY, this.value(0), entry!.revision).catch(() => {});
        this.options.log.warn({ holder: this.holderId }, "fleet lease handed over: this instance cannot read the rule tables and another instance can");
        this.freeSince = t;
        this.setRole(false);
        return;
      }
      // A free lease is left to the instances that can read for one lease period.
      const yieldFree = !mine && free && !this.canLead() && t - this.freeSince! < this.leaseMs;
      if (!yieldFree && (current === null || mine || free) && (await this.take(entry, t))) return;
      this.setRole(false);
    } catch (err) {
      // NATS cannot answer: nobody else can take the lease over before it expires either.
      this.options.log.warn({ err: (err as Error).message }, "fleet lease could not be read");
      if (this.leader && this.now() >= this.ownExpiry) this.setRole(false);
    }
  }

  /** Write the lease as ours until one lease from `t`; false when another instance wrote first. */
  private async take(entry: { revision: number } | null, t: number): Promise<boolean> {
    const expiresAtMs = t + this.leaseMs;
    try {
      if (entry === null) await this.kv.create(LEADER_KEY, this.value(expiresAtMs));
      else await this.kv.update(LEADER_KEY, this.value(expiresAtMs), entry.revision);
    } catch {
      return false; // another instance wrote first: it holds the lease
    }
    this.ownExpiry = expiresAtMs;
    this.lastHolder = this.holderId;
    this.setRole(true);
    return true;
  }

  /** Mark our lease as run out (expiry 0), if it is still ours. */
  private async handOver(): Promise<void> {
    try {
      const { entry, current } = await this.readLease();
      if (entry !== null && current?.holder === this.holderId) await this.kv.update(LEADER_KEY, this.value(0), entry.revision);
    } catch (err) {
      this.options.log.warn({ err: (err as Error).message }, "fleet lease could not be released; it expires by itself");
    }
  }
}
