/**
 * Object Store bucket `tort_snapshots` (spec section 9): one object per rules
 * version, named by the version, in the compact form of snapshot-codec.ts. The
 * leader puts, announces and prunes (the newest `keep` are retained, and never
 * the pinned or the announced one); every instance gets, checks and decodes.
 */
import type { NatsConnection } from "@nats-io/nats-core";
import { Objm, setSha256Backend, type ObjectInfo, type ObjectStore } from "@nats-io/obj";
import { createHash } from "node:crypto";
import type { RuleSnapshot } from "../match/snapshot.js";
import type { Announcement, SnapshotDigest } from "./rules-bucket.js";
import { decodeSnapshot, encodeSnapshot, SnapshotFormatError } from "./snapshot-codec.js";

/** SHA-256 of an object's whole bytes, hex: what announcements and pins name. */
export const objectDigest = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

/**
 * An object refused before or after it was fetched: not in the store, another deployment's, over the
 * memory budget, or not the bytes its announcement names. Refusing is final for that version: the
 * same object is not fetched again until the announcement or the pin changes.
 */
export class SnapshotRefusedError extends SnapshotFormatError {
  override name = "SnapshotRefusedError";
}

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
  /**
   * Get, check and decode a version read from `database`. `expected` is what the announcement or the
   * pin names (the object's own metadata when neither does): its size is checked before anything is
   * downloaded, the download stops past it, and the bytes must hash to its digest. A missing,
   * foreign, oversized or corrupt object is an error that says which.
   */
  get(version: string, database: string, expected?: SnapshotDigest | null): Promise<RuleSnapshot>;
  /** What a stored version's bytes are, as its object's metadata says (null when it is not stored). */
  digestOf(version: string): Promise<SnapshotDigest | null>;
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
      // A version names its rows (spec section 5): one already stored is the same rows, announced as it
      // is (re-putting would pull it from under a reader).
      const existing = await os.info(snapshot.version);
      if (existing !== null && !existing.deleted && existing.metadata?.sha256 !== undefined && existing.metadata.database === database) {
        const v = retained(existing);
        return { version: v.version, object: existing.name, sha256: existing.metadata.sha256, bytes: v.bytes, rows: v.rows, builtAt: v.builtAt, builtBy: v.builtBy, database };
      }
      const bytes = await encodeSnapshot(snapshot, { level: 1 });
      const sha256 = objectDigest(bytes);
      const rows = snapshotRows(snapshot);
      const builtAt = new Date().toISOString();
      const meta = { name: snapshot.version, description: `tortmatch rules ${snapshot.version}`, metadata: { version: snapshot.version, rows: String(rows), builtAt, builtBy, sha256, database } };
      try {
        await os.putBlob(meta, bytes);
      } catch {
        // The bucket may have been deleted under us: create it again, and try once more.
        os = await open();
        await os.putBlob(meta, bytes);
      }
      return { version: snapshot.version, object: snapshot.version, sha256, bytes: bytes.length, rows, builtAt, builtBy, database };
    },
    async get(version, database, expected) {
      const info = await os.info(version);
      if (info === null || info.deleted) throw new SnapshotRefusedError(`rules version ${version} is not in the snapshot store`);
      if (info.metadata?.database !== database) {
        throw new SnapshotRefusedError(`rules version ${version} in the snapshot store was read from other rule tables (database ${info.metadata?.database ?? "unknown"}, not ${database})`);
      }
      const want: SnapshotDigest = expected ?? { sha256: info.metadata?.sha256 ?? "", bytes: info.size };
      if (!/^[0-9a-f]{64}$/.test(want.sha256)) throw new SnapshotRefusedError(`rules version ${version} names no SHA-256 to check its bytes against`);
      if (info.size !== want.bytes) throw new SnapshotRefusedError(`rules version ${version} is ${info.size} bytes in the snapshot store; its announcement says ${want.bytes}`);
      // Its encoded form is smaller than the snapshot it holds: the memory budget bounds the download too.
      const maxBytes = options.maxSnapshotBytes ?? 2 ** 31;
      if (!Number.isSafeInteger(want.bytes) || want.bytes <= 0 || want.bytes > maxBytes) {
        throw new SnapshotRefusedError(`rules version ${version} is ${want.bytes} bytes, more than the ${maxBytes} the snapshot memory budget allows`);
      }
      const bytes = await download(os, version, want.bytes);
      if (objectDigest(bytes) !== want.sha256) throw new SnapshotRefusedError(`rules version ${version}: the object's bytes do not match the SHA-256 its announcement names`);
      const snapshot = await decodeSnapshot(bytes, options.maxSnapshotBytes === undefined ? {} : { maxRawBytes: options.maxSnapshotBytes, maxSnapshotBytes: options.maxSnapshotBytes });
      if (snapshot.version !== version) throw new SnapshotFormatError(`the object named ${version} holds rules version ${snapshot.version}`);
      return snapshot;
    },
    async digestOf(version) {
      const info = await os.info(version);
      return info === null || info.deleted ? null : { sha256: info.metadata?.sha256 ?? "", bytes: info.size };
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

/** An object's bytes, read chunk by chunk: refused as soon as they pass `maxBytes` (its info may lie about its chunks). */
async function download(os: ObjectStore, name: string, maxBytes: number): Promise<Uint8Array> {
  const result = await os.get(name);
  if (result === null) throw new SnapshotRefusedError(`rules version ${name} is not in the snapshot store`);
  const out = new Uint8Array(maxBytes);
  let length = 0;
  const reader = result.data.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (length + value.length > maxBytes) throw new SnapshotRefusedError(`rules version ${name} holds more than the ${maxBytes} bytes its announcement names`);
      out.set(value, length);
      length += value.length;
    }
  } catch (err) {
    await reader.cancel().catch(() => {});
    if (err instanceof SnapshotRefusedError) throw err;
    throw new SnapshotRefusedError(`rules version ${name} could not be read whole: ${(err as Error).message}`, { cause: err });
  }
  const failed = await result.error;
  if (failed) throw new SnapshotRefusedError(`rules version ${name} could not be read whole: ${failed.message}`, { cause: failed });
  return out.subarray(0, length);
}
