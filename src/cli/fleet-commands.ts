/**
 * The fleet's commands (spec section 9): `rules versions`, `rules pin`,
 * `rules unpin` and `fleet`. They talk to NATS only.
 */
import type { KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Config } from "../config.js";
import { discoverFleet, pingFleet } from "../fleet/discover-fleet.js";
import { CURRENT_KEY, databaseIdentity, parseAnnouncement, parsePinned, PINNED_KEY } from "../fleet/rules-bucket.js";
import { openSnapshotStore } from "../fleet/snapshot-store.js";
import { openExistingKv, withNats } from "./ops-commands.js";

/** A round trip for the fleet table: ms with up to two decimals, `-` when the instance has none (a fixed limit). */
const msText = (ms: number | null) => (ms === null ? "-" : String(Math.round(ms * 100) / 100));

/** Text columns, padded to the widest cell. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [header, ...rows].map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join("  ")).join("\n") + "\n";
}

/** The fleet's buckets, opened, never created: null when no instance has made them yet. */
async function openFleetBuckets(nc: NatsConnection, config: Config): Promise<{ kv: KV; store: Awaited<ReturnType<typeof openSnapshotStore>> } | null> {
  try {
    const store = await openSnapshotStore(nc, config.TORT_SNAPSHOT_BUCKET, { replicas: config.TORT_STREAM_REPLICAS, create: false, maxSnapshotBytes: config.TORT_SNAPSHOT_MAX_MB * 2 ** 20 });
    const kv = await openExistingKv(nc, config.TORT_RULES_BUCKET);
    return kv === null ? null : { kv, store };
  } catch {
    return null;
  }
}

/** `tortmatch rules versions`: the retained versions, newest first, marking the current and the pinned one. */
export const rulesVersions = (opts: { json?: boolean }) =>
  withNats(async (nc, config) => {
    const buckets = await openFleetBuckets(nc, config);
    if (buckets === null) {
      if (opts.json) process.stdout.write("[]\n");
      else process.stdout.write(`no rules version retained: no instance has made ${config.TORT_SNAPSHOT_BUCKET} and ${config.TORT_RULES_BUCKET} yet\n`);
      return;
    }
    const { kv, store } = buckets;
    const currentEntry = await kv.get(CURRENT_KEY);
    const pinnedEntry = await kv.get(PINNED_KEY);
    const current = currentEntry?.operation === "PUT" ? parseAnnouncement(currentEntry.value)?.version ?? null : null;
    const pinned = pinnedEntry?.operation === "PUT" ? parsePinned(pinnedEntry.value) : null;
    const versions = (await store.list()).map((v) => ({ ...v, current: v.version === current, pinned: v.version === pinned }));
    if (opts.json) {
      process.stdout.write(`${JSON.stringify(versions)}\n`);
      return;
    }
    if (versions.length === 0) {
      process.stdout.write(`no rules version retained in ${config.TORT_SNAPSHOT_BUCKET} (no instance has published one yet)\n`);
      return;
    }
    process.stdout.write(
      table(
        ["VERSION", "ROWS", "BYTES", "BUILT AT", "BUILT BY", ""],
        versions.map((v) => [v.version, String(v.rows), String(v.bytes), v.builtAt, v.builtBy, [v.current ? "current" : "", v.pinned ? "pinned" : ""].filter(Boolean).join(", ")]),
      ),
    );
  });

/**
 * `tortmatch rules pin VERSION`: only a version every instance can serve is pinned. It is fetched,
 * checked (size, SHA-256, every length) and compiled as an instance would, for this deployment's
 * tables and memory budget, before the pin is written; the pin names the object's digest, which
 * every instance checks the bytes it fetches against.
 */
export const rulesPin = (version: string) =>
  withNats(async (nc, config) => {
    const buckets = await openFleetBuckets(nc, config);
    if (buckets === null) throw new Error(`no rules version is retained: no instance has made ${config.TORT_SNAPSHOT_BUCKET} and ${config.TORT_RULES_BUCKET} yet`);
    const { kv, store } = buckets;
    const retained = await store.list();
    if (!retained.some((v) => v.version === version)) {
      const known = retained.map((v) => v.version).join(", ") || "none";
      throw new Error(`rules version ${JSON.stringify(version)} is not retained in ${config.TORT_SNAPSHOT_BUCKET}; retained: ${known}`);
    }
    const digest = await store.digestOf(version);
    try {
      if (digest === null) throw new Error("it is no longer stored");
      await store.get(version, databaseIdentity(config.TORT_DEPLOYMENT, config.DATABASE_URL), digest);
    } catch (err) {
      throw new Error(`rules version ${version} cannot be served by this deployment, not pinned: ${(err as Error).message}`);
    }
    const revision = await kv.put(PINNED_KEY, JSON.stringify({ version, sha256: digest!.sha256, bytes: digest!.bytes, pinnedAt: new Date().toISOString() }));
    process.stdout.write(`pinned rules version ${version} (revision ${revision}, verified): every instance serves it until \`tortmatch rules unpin\`\n`);
  });

/** `tortmatch rules unpin`: every instance goes back to the announced version. */
export const rulesUnpin = () =>
  withNats(async (nc, config) => {
    const buckets = await openFleetBuckets(nc, config);
    if (buckets === null) throw new Error(`nothing to unpin: no instance has made ${config.TORT_RULES_BUCKET} yet`);
    await buckets.kv.delete(PINNED_KEY);
    process.stdout.write("unpinned: every instance serves the current rules version\n");
  });

/** `tortmatch fleet`: one line per running instance (`--json`: an array of objects). */
export const fleet = (opts: { json?: boolean; waitMs?: number }) =>
  withNats(async (nc, config) => {
    const ask = { service: config.TORT_SERVICE_NAME, consumer: config.TORT_CONSUMER, ...(opts.waitMs !== undefined ? { maxWaitMs: opts.waitMs } : {}) };
    // Stats and pings together: an instance that answered a ping but not its stats (a busy event
    // loop) is named, so a short list is never taken for the whole fleet.
    const [instances, pinged] = await Promise.all([discoverFleet(nc, ask), pingFleet(nc, ask)]);
    const silent = pinged.filter((id) => !instances.some((i) => i.id === id));
    if (silent.length > 0) {
      process.stderr.write(`tortmatch: warning: the list may be incomplete: ${silent.join(", ")} answered a ping but not its stats in time; run it again\n`);
    }
    if (opts.json) {
      process.stdout.write(`${JSON.stringify(instances)}\n`);
      return;
    }
    if (instances.length === 0) {
      process.stdout.write(`no running tortmatch instance on consumer ${config.TORT_CONSUMER}\n`);
      return;
    }
    process.stdout.write(
      table(
        ["ID", "ROLE", "STATE", "VERSION", "SOURCE", "TABLES", "IN FLIGHT", "LIMIT", "MIN RTT MS", "RTT MS", "PINNED"],
        instances.map((i) => [
          i.id, i.role, i.state, i.version ?? "-", i.source ?? "-", i.tablesReadable === null ? "-" : i.tablesReadable ? "readable" : "UNREADABLE",
          String(i.inFlight), i.mode === "auto" ? `${i.limit} (auto)` : String(i.limit), msText(i.minRttMs), msText(i.rttMs),
          i.pinned === null ? "-" : i.pinIgnored === i.pinned ? `${i.pinned} (ignored: cannot be served)` : i.pinned,
        ]),
      ),
    );
  });
