/**
 * Nothing fetched is trusted (spec section 9), on a real nats-server: the object's size is checked
 * before it is downloaded, its bytes against the SHA-256 and size its announcement names, and every
 * length in it before anything is inflated. A hostile object costs a refusal, not memory.
 */
import { Objm } from "@nats-io/obj";
import type { NatsConnection } from "@nats-io/transport-node";
import { createHash, randomBytes } from "node:crypto";
import { createDeflate } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodeSnapshot, SNAPSHOT_FORMAT } from "../../src/fleet/snapshot-codec.js";
import { objectDigest, openSnapshotStore, SnapshotRefusedError } from "../../src/fleet/snapshot-store.js";
import { compile, ruleSet } from "../support/rule-sets.js";
import { connectTest } from "../support/nats.js";

let nc: NatsConnection;
const bucket = `snaps_store_${randomBytes(4).toString("hex")}`;
beforeAll(async () => {
  nc = await connectTest();
});
afterAll(async () => {
  await new Objm(nc).open(bucket).then((os) => os.destroy()).catch(() => {});
  await nc?.close();
});

/** Deflated zeros: a small body that inflates to `bytes` (built by streaming: the test never holds them whole). */
async function deflateBomb(bytes: number): Promise<Uint8Array> {
  const deflate = createDeflate({ level: 9 });
  const chunks: Buffer[] = [];
  deflate.on("data", (c: Buffer) => chunks.push(c));
  const done = new Promise((resolve) => deflate.on("end", resolve));
  const zeros = Buffer.alloc(1024 * 1024);
  for (let written = 0; written < bytes; written += zeros.length) {
    if (!deflate.write(zeros)) await new Promise((resolve) => deflate.once("drain", resolve));
  }
  deflate.end();
  await done;
  return Buffer.concat(chunks);
}

/** A snapshot object around `body`: magic, format, lengths and the body's own SHA-256, all as the codec writes them. */
function objectAround(body: Uint8Array, raw: number): Uint8Array {
  const out = new Uint8Array(56 + body.length);
  const view = new DataView(out.buffer);
  out.set(Buffer.from("TORTSNAP", "latin1"), 0);
  view.setUint32(8, SNAPSHOT_FORMAT, true);
  view.setUint32(12, body.length, true);
  view.setFloat64(16, raw, true);
  out.set(createHash("sha256").update(body).digest(), 24);
  out.set(body, 56);
  return out;
}

/** An encoded snapshot whose header declares `raw` as its inflated length (the body's own checksum kept valid). */
async function withRawLength(raw: number): Promise<Uint8Array> {
  const bytes = await encodeSnapshot(compile(ruleSet(3, 50)));
  new DataView(bytes.buffer, bytes.byteOffset).setFloat64(16, raw, true);
  return bytes;
}

describe("snapshot store", () => {
  it("serves an object only when its bytes are those its announcement names", async () => {
    const store = await openSnapshotStore(nc, bucket, { replicas: 1, maxSnapshotBytes: 64 * 2 ** 20 });
    const written = compile(ruleSet(7, 400));
    const announced = await store.put(written, "me", "db1");
    expect(announced.sha256).toBe(objectDigest(await encodeSnapshot(written, { level: 1 })));
    expect((await store.get(written.version, "db1", announced)).version).toBe(written.version);
    // The object's own metadata when nothing else names it (a pin written by another tool).
    expect((await store.get(written.version, "db1", null)).version).toBe(written.version);

    // Another snapshot, valid in itself, put under the announced name by anyone who can write the bucket.
    const os = await new Objm(nc).open(bucket);
    const other = await encodeSnapshot(compile(ruleSet(8, 400)));
    await os.putBlob({ name: written.version, metadata: { database: "db1", sha256: objectDigest(other) } }, other);
    const size = (await os.info(written.version))!.size;
    await expect(store.get(written.version, "db1", { ...announced, bytes: size })).rejects.toThrow(/do not match the SHA-256/);
    await expect(store.get(written.version, "db1", announced)).rejects.toThrow(size === announced.bytes ? /SHA-256/ : /its announcement says/);
    await expect(store.get(written.version, "db2", announced)).rejects.toThrow(/other rule tables/);
    await expect(store.get("no-such-version", "db1", announced)).rejects.toThrow(SnapshotRefusedError);
  });

  it("refuses an object over the memory budget before downloading it, and one whose header lies about its length before inflating it", async () => {
    const small = await openSnapshotStore(nc, bucket, { replicas: 1, maxSnapshotBytes: 256 * 1024 });
    const os = await new Objm(nc).open(bucket);
    const big = randomBytes(1024 * 1024);
    await os.putBlob({ name: "big", metadata: { database: "db1", sha256: objectDigest(big) } }, big);
    await expect(small.get("big", "db1", { sha256: objectDigest(big), bytes: big.length })).rejects.toThrow(/more than the 262144 the snapshot memory budget allows/);

    // A header whose raw length is NaN (no `>` test catches it) or past the budget: refused from the header alone.
    for (const [raw, reason] of [[Number.NaN, /not a whole number/], [1e15, /more than the 262144 allowed/], [-1, /not a whole number/], [1.5, /not a whole number/]] as const) {
      const bytes = await withRawLength(raw);
      const name = `lying-${String(raw)}`;
      await os.putBlob({ name, metadata: { database: "db1", sha256: objectDigest(bytes) } }, bytes);
      await expect(small.get(name, "db1", { sha256: objectDigest(bytes), bytes: bytes.length })).rejects.toThrow(reason);
    }
  });

  it("a small object whose header says NaN and whose body inflates to 512 MiB costs a refusal, not memory", async () => {
    const store = await openSnapshotStore(nc, bucket, { replicas: 1, maxSnapshotBytes: 512 * 2 ** 20 });
    const os = await new Objm(nc).open(bucket);
    const bomb = objectAround(await deflateBomb(512 * 2 ** 20), Number.NaN);
    expect(bomb.length).toBeLessThan(2 * 2 ** 20);
    await os.putBlob({ name: "bomb", metadata: { database: "db1", sha256: objectDigest(bomb) } }, bomb);
    const before = process.memoryUsage();
    await expect(store.get("bomb", "db1", { sha256: objectDigest(bomb), bytes: bomb.length })).rejects.toThrow(/not a whole number/);
    const after = process.memoryUsage();
    // Inflating it would have taken 512 MiB of buffers; refused from its header, it takes about its own size.
    expect(after.arrayBuffers + after.external - (before.arrayBuffers + before.external)).toBeLessThan(64 * 2 ** 20);
  });
});
