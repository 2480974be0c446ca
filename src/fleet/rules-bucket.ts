/**
 * KV bucket `tort_rules` (spec section 9): `leader` holds the lease, `current`
 * the announcement of the newest snapshot in the Object Store, `pinned` the
 * version every instance serves while it exists.
 */
import { Kvm, type KV } from "@nats-io/kv";
import { createHash } from "node:crypto";
import type { NatsConnection } from "@nats-io/nats-core";
import type { Logger } from "pino";
import { watchKv } from "../nats/watch-kv.js";

export const LEADER_KEY = "leader";
export const CURRENT_KEY = "current";
export const PINNED_KEY = "pinned";

/** What an object's bytes must be: their SHA-256 (hex) and length. Checked on every fetch. */
export interface SnapshotDigest {
  readonly sha256: string;
  readonly bytes: number;
}

/** The value of `current`: which object holds the newest snapshot, and what it is. */
export interface Announcement extends SnapshotDigest {
  readonly version: string;
  /** Object name in the snapshot bucket; empty when the leader could not store it (instances then read the rule tables). */
  readonly object: string;
  /** SHA-256 of the object's whole bytes (the encoded snapshot, header included). */
  readonly sha256: string;
  /** The object's length in bytes. */
  readonly bytes: number;
  /** Rule and property rows the snapshot holds. */
  readonly rows: number;
  readonly builtAt: string;
  /**
   * When the leader last read the tables and found this content (ISO-8601): renewed by every refresh
   * that changes nothing, so a follower's snapshot age is the fleet's, not the version's.
   */
  readonly confirmedAt?: string;
  readonly builtBy: string;
  /** Whose rules these are (`databaseIdentity`: the deployment and its database): an instance serves only its own. */
  readonly database: string;
}

/**
 * A short, secret-free name of the rules a deployment serves (spec section 9: deployments never
 * mix): its name (TORT_DEPLOYMENT) and the database's name in DATABASE_URL, hashed. Not the host or
 * port: one deployment may reach its database by several (a proxy, a replica, another DNS name),
 * while two deployments whose URLs look alike (`db:3306/rules` in two Kubernetes namespaces) differ
 * by their names. Announcements, objects and pins of another identity are never served.
 */
export function databaseIdentity(deployment: string, databaseUrl: string): string {
  let database = databaseUrl;
  try {
    database = decodeURIComponent(new URL(databaseUrl).pathname.replace(/^\//, ""));
  } catch {
    // an unparseable URL is its own name
  }
  return createHash("sha256").update(`${deployment}\n${database}`).digest("hex").slice(0, 16);
}

export async function openRulesBucket(nc: NatsConnection, bucket: string, replicas: number): Promise<KV> {
  // A little history, so that an operator can see who pinned what and when.
  return new Kvm(nc).create(bucket, { replicas, history: 5 });
}

const decoder = new TextDecoder();

/**
 * Write `current`, as the leader: the lease is read again from the server first, and the write is a
 * compare-and-set on the revision read before that, so a former leader that was slow to finish its
 * publish cannot write an older version over its successor's newer one. Throws when either fails.
 */
export async function announce(kv: KV, lease: { confirm(): Promise<boolean> }, announcement: Announcement): Promise<number> {
  const previous = await kv.get(CURRENT_KEY);
  if (!(await lease.confirm())) throw new Error("the lease was lost before the snapshot was announced");
  const body = JSON.stringify(announcement);
  return previous === null ? kv.create(CURRENT_KEY, body) : kv.update(CURRENT_KEY, body, previous.revision);
}

/** An announcement from its KV value, or null when it is not one (logged by the caller). */
export function parseAnnouncement(value: Uint8Array): Announcement | null {
  try {
    const a = JSON.parse(decoder.decode(value)) as Partial<Announcement>;
    if (typeof a?.version !== "string" || a.version === "" || typeof a.object !== "string" || typeof a.sha256 !== "string" || typeof a.database !== "string") return null;
    return a as Announcement;
  } catch {
    return null;
  }
}

/** A pin: the version, and what its object must be when `tortmatch rules pin` verified it. */
export interface Pin {
  readonly version: string;
  /** Absent when the pin was written by another tool: the object's own metadata is then checked against. */
  readonly digest: SnapshotDigest | null;
}

/**
 * The pin from its KV value: the version itself, or `{"version": "...", "sha256": "...", "bytes": N}`
 * as `tortmatch rules pin` writes it; null when empty or not one.
 */
export function parsePin(value: Uint8Array): Pin | null {
  const text = decoder.decode(value).trim();
  if (text === "" || text.length > 4096) return null;
  if (!text.startsWith("{")) return { version: text, digest: null };
  try {
    const v = JSON.parse(text) as { version?: unknown; sha256?: unknown; bytes?: unknown };
    if (typeof v.version !== "string" || v.version === "") return null;
    const digest = typeof v.sha256 === "string" && typeof v.bytes === "number" ? { sha256: v.sha256, bytes: v.bytes } : null;
    return { version: v.version, digest };
  } catch {
    return null;
  }
}

/** The pinned version from its KV value (see parsePin); null when empty. */
export function parsePinned(value: Uint8Array): string | null {
  return parsePin(value)?.version ?? null;
}

/** Follow `current` and `pinned`: each change (and their values at start) is handed on; a deleted key as null. */
export function watchFleetKeys(
  kv: KV,
  on: { current(announcement: Announcement | null): void; pinned(pin: Pin | null): void },
  log: Logger,
): { stop(): void } {
  // One watch per key: server 2.9 has no consumer with several filter subjects.
  const current = watchKv(
    kv,
    "rules announcement",
    (entry) => {
      if (entry.operation !== "PUT") return on.current(null);
      const a = parseAnnouncement(entry.value);
      if (a === null) log.warn({ key: entry.key, revision: entry.revision }, "rules announcement is not one; ignored");
      else on.current(a);
    },
    log,
    { key: CURRENT_KEY },
  );
  const pinned = watchKv(kv, "rules pin", (entry) => on.pinned(entry.operation !== "PUT" ? null : parsePin(entry.value)), log, { key: PINNED_KEY });
  return {
    stop() {
      current.stop();
      pinned.stop();
    },
  };
}
