/**
 * The patch scripts/patch-nats-core.mjs applies on install: an answered request
 * builds no RequestError any more, and requests behave as before (answers,
 * no responders, timeouts, nothing left in the client's request table).
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

describe("the nats-core patch", () => {
  it("is applied", () => {
    expect(String(requestModule.RequestOne.prototype.resolver)).toContain("tortmatch patch");
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
