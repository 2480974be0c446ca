/**
 * What this instance knows of its fleet, shared by the rule cache's fleet actors: the lease while it
 * is held, the announcement and the pin as last watched, a notice owed while leading, and the
 * versions whose objects were refused. One object, made by the service before any actor runs.
 */
import type { LeaderLease } from "../fleet/leader-lease.js";
import type { Announcement, Pin, SnapshotDigest } from "../fleet/rules-bucket.js";

/** Refused versions remembered (each is logged once), at most. */
const REFUSED_KEPT = 64;

export interface FleetLink {
  /** The lease, from the fleet actor's start until it stops (null without a fleet). */
  lease: LeaderLease | null;
  announcement: Announcement | null;
  pin: Pin | null;
  /** When a notice reached this instance while it led and no load has finished since (null when none is owed). */
  noticeOwedSince: number | null;
  /** What a fetched object's bytes must match: the announcement's or the pin's digest for that version. */
  expectedDigest(version: string): SnapshotDigest | null;
  wasRefused(version: string): boolean;
  noteRefused(version: string): void;
}

export function createFleetLink(): FleetLink {
  const refused = new Set<string>();
  return {
    lease: null,
    announcement: null,
    pin: null,
    noticeOwedSince: null,
    expectedDigest(version) {
      return this.announcement?.version === version ? this.announcement : this.pin?.version === version ? this.pin.digest : null;
    },
    wasRefused: (version) => refused.has(version),
    noteRefused(version) {
      refused.add(version);
      if (refused.size > REFUSED_KEPT) refused.delete(refused.values().next().value!);
    },
  };
}
