/**
 * The patches scripts/patch-nats-core.mjs applies on install: an answered
 * request builds no RequestError any more, and requests behave as before
 * (answers, no responders, timeouts, nothing left in the client's request
 * table); what one loop turn queues leaves in one socket write, and nothing
 * queued is lost when the connection is closed right after.
 */
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { describe, expect, it } from "vitest";
import { connect } from "@nats-io/transport-node";
import { TEST_NATS_URL } from "../support/nats.js";

const require = createRequire(import.meta.url);
// The package exports only its entry points: its files are reached by path, as the client itself requires them.
const lib = dirname(require.resolve("@nats-io/nats-core/internal"));
const errorsModule = require(join(lib, "errors.js")) as { RequestError: new (...args: unknown[]) => Error };
const requestModule = require(join(lib, "request.js")) as { RequestOne: { prototype: { resolver: () => void } } };
const protocolModule = require(join(lib, "protocol.js")) as { ProtocolHandler: { prototype: { sendCommand: () => void; close: () => void } } };

/** Counts the socket writes of a connection (the transport's socket is internal). */
function countWrites(nc: unknown): { readonly writes: number } {
  const socket = (nc as { protocol: { transport: { socket: { write: (...args: unknown[]) => boolean } } } }).protocol.transport.socket;
  const write = socket.write;
  const counter = { writes: 0 };
  socket.write = function (this: unknown, ...args: unknown[]) {
    counter.writes++;
    return write.apply(this, args);
  };
  return counter;
}

describe("the nats-core patch", () => {
  it("is applied", () => {
    expect(String(requestModule.RequestOne.prototype.resolver)).toContain("tortmatch patch");
    expect(String(protocolModule.ProtocolHandler.prototype.sendCommand)).toContain("tortmatch patch");
    expect(String(protocolModule.ProtocolHandler.prototype.close)).toContain("flushPending");
  });

  it("sends what one loop turn publishes in one socket write, even across awaits, and all of it arrives", async () => {
    const sender = await connect({ servers: TEST_NATS_URL, noAsyncTraces: true });
    const receiver = await connect({ servers: TEST_NATS_URL });
    try {
      const got: string[] = [];
      const sub = receiver.subscribe("tortmatch.patch.coalesce", { callback: (_err, msg) => void got.push(msg.string()) });
      await receiver.flush();
      const counter = countWrites(sender);
      // As a message handler does: an await between one publish and the next (unpatched: a write each).
      for (let i = 0; i < 200; i++) {
        await Promise.resolve();
        sender.publish("tortmatch.patch.coalesce", String(i));
      }
      await new Promise((r) => setImmediate(r));
      expect(counter.writes).toBe(1);
      await sender.flush();
      await receiver.flush();
      while (got.length < 200) await new Promise((r) => setTimeout(r, 5));
      expect(got).toEqual(Array.from({ length: 200 }, (_, i) => String(i)));
      sub.unsubscribe();
    } finally {
      await sender.close();
      await receiver.drain();
    }
  });

  // The stock client fails this too: close() destroys the socket before its queued flush runs.
  it("close() right after a publish still sends it", async () => {
    const receiver = await connect({ servers: TEST_NATS_URL });
    try {
      const got: string[] = [];
      receiver.subscribe("tortmatch.patch.last", { callback: (_err, msg) => void got.push(msg.string()) });
      await receiver.flush();
      for (let round = 0; round < 5; round++) {
        const sender = await connect({ servers: TEST_NATS_URL });
        sender.publish("tortmatch.patch.last", `last ${round}`);
        await sender.close();
      }
      const deadline = Date.now() + 5_000;
      while (got.length < 5 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      expect(got).toEqual([0, 1, 2, 3, 4].map((r) => `last ${r}`));
    } finally {
      await receiver.drain();
    }
  });

  it("answered requests build no RequestError; answers, no responders and timeouts behave as before", async () => {
    // As the service connects: without async traces (a stack per request otherwise, by design).
    const nc = await connect({ servers: TEST_NATS_URL, noAsyncTraces: true });
    const traced = await connect({ servers: TEST_NATS_URL });
    const Original = errorsModule.RequestError;
    let built = 0;
    errorsModule.RequestError = class extends Original {
      constructor(...args: unknown[]) {
        super(...args);
        built++;
      }
    };
    try {
      const sub = nc.subscribe("tortmatch.patch.echo", { callback: (_err, msg) => void msg.respond(msg.data) });
      const answers = await Promise.all(Array.from({ length: 200 }, (_, i) => nc.request("tortmatch.patch.echo", String(i), { timeout: 5_000 })));
      expect(answers.map((m) => m.string())).toEqual(Array.from({ length: 200 }, (_, i) => String(i)));
      expect(built).toBe(0);
      // The count is real: a connection with async traces builds one per request on purpose.
      await Promise.all(Array.from({ length: 10 }, () => traced.request("tortmatch.patch.echo", "t", { timeout: 5_000 })));
      expect(built).toBe(10);
      await expect(nc.request("tortmatch.patch.nobody", "x", { timeout: 1_000 })).rejects.toThrow(/no responders/i);
      const silent = nc.subscribe("tortmatch.patch.silent", { callback: () => {} });
      await expect(nc.request("tortmatch.patch.silent", "x", { timeout: 200 })).rejects.toThrow(/timeout/i);
      // Nothing left waiting in the request table.
      const mux = (nc as unknown as { protocol: { muxSubscriptions: { reqs: Map<string, unknown> } } }).protocol.muxSubscriptions;
      expect(mux.reqs.size).toBe(0);
      sub.unsubscribe();
      silent.unsubscribe();
    } finally {
      errorsModule.RequestError = Original;
      await nc.drain();
      await traced.drain();
    }
  });
});
