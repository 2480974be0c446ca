/**
 * The byte budget holds for any size the server accepts (issue: large messages under-counted): on a
 * private nats-server whose max_payload is 8 MiB, messages of 7 MiB are pulled with a budget of
 * 20 MiB, and the bytes held at once never pass it — each request reserves the server's largest
 * message, not the largest valid result.
 */
import { AckPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createByteBudget } from "../../src/gate/byte-budget.js";
import { createConcurrencyLimit } from "../../src/gate/concurrency-limit.js";
import { messageReserve, pullMessages } from "../../src/ingest/pull-messages.js";
import { freePort, NATS_SERVER_BIN } from "../support/nats-server.js";
import { eventually } from "../support/nats.js";

let server: ChildProcess;
let nc: NatsConnection;
beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), "nats-8mib-"));
  const port = await freePort();
  writeFileSync(join(dir, "server.conf"), `listen: 127.0.0.1:${port}\nmax_payload: 8MB\njetstream { store_dir: "${join(dir, "js")}" }\n`);
  server = spawn(NATS_SERVER_BIN, ["-c", join(dir, "server.conf")], { stdio: "ignore" });
  nc = (await eventually(() => connect({ servers: `127.0.0.1:${port}` }).catch(() => null), "the private nats-server", 15_000, 100))!;
});
afterAll(async () => {
  await nc?.close();
  server?.kill("SIGTERM");
});

describe("the byte budget with a server that accepts 8 MiB messages", () => {
  it("never holds more bytes than TORT_MAX_INFLIGHT_BYTES, whatever the messages' size", async () => {
    expect(nc.info!.max_payload).toBe(8 * 1024 * 1024);
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: "BIG", subjects: ["big.>"], max_msg_size: -1 });
    await jsm.consumers.add("BIG", { durable_name: "c", ack_policy: AckPolicy.Explicit, ack_wait: 30_000_000_000 });
    const js = jetstream(nc);
    const body = new Uint8Array(7 * 1024 * 1024).fill(120);
    for (let i = 0; i < 8; i++) await js.publish("big.x", body);

    const maxBytes = 20 * 1024 * 1024;
    const budget = createByteBudget(maxBytes);
    const limit = createConcurrencyLimit(16);
    let heldBytes = 0;
    let mostHeld = 0;
    let settled = 0;
    const sub = pullMessages({ nc, stream: "BIG", consumer: "c" }, limit, budget, { maxBatch: 16, expiresMs: 2_000, retryDelayMs: 100 }, pino({ level: "silent" })).subscribe({
      next: ({ msg, bytes }) => {
        heldBytes += msg.data.length;
        mostHeld = Math.max(mostHeld, heldBytes);
        // Held a while, as a slow settlement would: the next pulls must wait for the budget.
        setTimeout(() => {
          heldBytes -= msg.data.length;
          msg.ack();
          limit.release(1);
          budget.release(bytes);
          settled++;
        }, 50);
      },
    });
    try {
      await eventually(() => settled === 8 || null, "every large message settled", 60_000, 20);
      expect(mostHeld).toBeLessThanOrEqual(maxBytes);
      expect(mostHeld).toBeGreaterThanOrEqual(body.length); // it did hold them, two at a time at most
      expect(messageReserve(nc)).toBeGreaterThan(8 * 1024 * 1024);
    } finally {
      sub.unsubscribe();
    }
  });
});
