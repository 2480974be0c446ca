/**
 * Object Store bucket `tort_snapshots` (spec section 9): one object per rules
 * version, named by the version, in the compact form of snapshot-codec.ts. The
 * leader puts, announces and prunes (the newest `keep` are retained, and never
 * the pinned or the announced one); every instance gets, checks and decodes.
 */
import type { NatsConnection } from "@nats-io/nats-core";
import { Objm, setSha256Backend, type ObjectInfo, type ObjectStore } from "@nats-io/obj";
import type { RuleSnapshot } from "../match/snapshot.js";
import type { Announcement } from "./rules-bucket.js";
import { decodeSnapshot, encodeSnapshot, readSnapshotHeader, SnapshotFormatError } from "./snapshot-codec.js";

/** Rows of both rule tables a snapshot was built from, skipped rows included. */
export const snapshotRows = (s: RuleSnapshot) => s.table.rules.size + s.table.skippedRules.size + s.table.properties.length;

/** One retained version, as `tortmatch rules versions` lists it. */
export interface RetainedVersion {
  readonly version: string;
  readonly rows: number;
  readonly bytes: number;
  readonly builtAt: string;
  readonly builtBy: string;
}

export interface SnapshotStore {
  /** Encode and put a snapshot read from `database` (its identity); resolves with its announcement (not yet announced). */
  put(snapshot: RuleSnapshot, builtBy: string, database: string): Promise<Announcement>;
  /** Get, check and decode a version read from `database`; a missing, foreign or corrupt object is an error that says which. */
  get(version: string, database: string): Promise<RuleSnapshot>;
  /** Retained versions, newest first. */
  list(): Promise<RetainedVersion[]>;
  /** Delete all but the newest `keep` versions, never those in `protect`; resolves with the deleted. */
  prune(keep: number, protect: readonly (string | null)[]): Promise<string[]>;
}

/**
 * The snapshot bucket, created when missing (`create`, the service) or only
 * opened (the commands: they never create it; a missing bucket is an error).
 * `maxSnapshotBytes` is the memory budget a fetched snapshot must fit.
 */
export async function openSnapshotStore(
  nc: NatsConnection,
  bucket: string,
  options: { replicas: number; maxSnapshotBytes?: number; create?: boolean },
): Promise<SnapshotStore> {
  // The object store hashes every chunk it puts and gets. Its default is js-sha256, in JavaScript
  // (browser-safe): 25-30 ms of the event loop for a 1 MB snapshot, in the first second of a fleet
  // leader's traffic. node:crypto's is native. Process-wide; setting it again is a no-op.
  setSha256Backend("native");
  const open = () => (options.create === false ? new Objm(nc).open(bucket) : new Objm(nc).create(bucket, { replicas: options.replicas }));
  let os: ObjectStore = await open();
  const retained = (info: ObjectInfo): RetainedVersion => ({
    version: info.metadata?.version ?? info.name,
    rows: Number(info.metadata?.rows ?? 0),
    bytes: info.size,
    builtAt: info.metadata?.builtAt ?? info.mtime,
    builtBy: info.metadata?.builtBy ?? "",
  });
  const list = async () =>
    (await os.list())
      .filter((i) => !i.deleted)
      .map((i) => ({ info: i, v: retained(i) }))
      .sort((a, b) => (a.v.builtAt < b.v.builtAt ? 1 : a.v.builtAt > b.v.builtAt ? -1 : 0));
  return {
    async put(snapshot, builtBy, database) {
      // A version already stored is the same rows: announce it as it is (re-putting would pull it from under a reader).
      const existing = await os.info(snapshot.version);
      if (existing !== null && !existing.deleted && existing.metadata?.sha256 !== undefined && existing.metadata.database === database) {
        const v = retained(existing);
        return { version: v.version, object: existing.name, sha256: existing.metadata.sha256, bytes: v.bytes, rows: v.rows, builtAt: v.builtAt, builtBy: v.builtBy, database };
      }
      const bytes = await encodeSnapshot(snapshot, { level: 1 });
      const header = readSnapshotHeader(bytes);
      const rows = snapshotRows(snapshot);
      const builtAt = new Date().toISOString();
      const meta = { name: snapshot.version, description: `tortmatch rules ${snapshot.version}`, metadata: { version: snapshot.version, rows: String(rows), builtAt, builtBy, sha256: header.sha256, database } };
      try {
        await os.putBlob(meta, bytes);
      } catch {
        // The bucket may have been deleted under us: create it again, and try once more.
        os = await open();
        await os.putBlob(meta, bytes);
      }
      return { version: snapshot.version, object: snapshot.version, sha256: header.sha256, bytes: bytes.length, rows, builtAt, builtBy, database };
    },
    async get(version, database) {
      const info = await os.info(version);
      if (info !== null && !info.deleted && info.metadata?.database !== database) {
        throw new SnapshotFormatError(`rules version ${version} in the snapshot store was read from other rule tables (database ${info.metadata?.database ?? "unknown"}, not ${database})`);
      }
      const bytes = await os.getBlob(version);
      if (bytes === null) throw new SnapshotFormatError(`rules version ${version} is not in the snapshot store`);
      // The encoded form inflates to far less than the snapshot's memory: the budget bounds both.
      const snapshot = await decodeSnapshot(bytes, options.maxSnapshotBytes === undefined ? {} : { maxRawBytes: options.maxSnapshotBytes, maxSnapshotBytes: options.maxSnapshotBytes });
      if (snapshot.version !== version) throw new SnapshotFormatError(`the object named ${version} holds rules version ${snapshot.version}`);
      return snapshot;
    },
    list: async () => (await list()).map((x) => x.v),
    async prune(keep, protect) {
      const deleted: string[] = [];
      const versions = await list();
      for (const { info, v } of versions.slice(keep)) {
        if (protect.includes(v.version)) continue;
        await os.delete(info.name);
        deleted.push(v.version);
      }
      return deleted;
    },
  };
}
