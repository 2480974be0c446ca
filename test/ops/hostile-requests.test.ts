/** No request may stop the ops server: malformed request lines, huge paths and headers, odd methods, clients that never read. */
import { connect } from "node:net";
import { Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startOpsServer, type OpsServer } from "../../src/ops/ops-server.js";
import type { Status } from "../../src/ops/status.js";
import { eventually } from "../support/nats.js";

let server: OpsServer;
const port = () => Number(new URL(server.url).port);
// A large status, pushed often: a client that does not read falls behind fast.
const status = { ready: true, pad: "p".repeat(200_000) } as unknown as Status;

beforeAll(async () => {
  server = await startOpsServer({ host: "127.0.0.1", port: 0, registry: new Registry(), status: () => status, pushEveryMs: 5, maxEventBufferBytes: 256 * 1024 });
});
afterAll(() => server?.close());

/** Send raw bytes; resolve with what came back (first 200 bytes) once the server answers or closes. */
function raw(bytes: string | Buffer): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port(), "127.0.0.1");
    let got = "";
    const timer = setTimeout(() => (socket.destroy(), resolve(got)), 3_000);
    socket.on("data", (d) => {
      got += d;
      if (got.includes("\r\n\r\n")) (clearTimeout(timer), socket.destroy(), resolve(got.slice(0, 200)));
    });
    socket.on("close", () => (clearTimeout(timer), resolve(got.slice(0, 200))));
    socket.on("error", () => {});
    socket.write(bytes);
  });
}

const alive = async () => (await fetch(new URL("healthz", server.url))).status;

describe("ops server under hostile requests", () => {
  it.each([
    ["a request target new URL rejects", "GET // HTTP/1.1\r\nHost: x\r\n\r\n"],
    ["an absolute-form target that does not parse", "GET http://[::1 HTTP/1.1\r\nHost: x\r\n\r\n"],
    ["percent signs that decode to nothing", "GET /%zz%00/../status.json?%ff HTTP/1.1\r\nHost: x\r\n\r\n"],
    ["a 100 kB path", `GET /${"a".repeat(100_000)} HTTP/1.1\r\nHost: x\r\n\r\n`],
    ["a 100 kB header", `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${"b".repeat(100_000)}\r\n\r\n`],
    ["an odd method", "BREW /coffee HTTP/1.1\r\nHost: x\r\n\r\n"],
    ["asterisk form", "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n"],
    ["CONNECT", "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com\r\n\r\n"],
    ["binary garbage", Buffer.from([0, 1, 2, 3, 255, 13, 10, 13, 10])],
    ["a request line with no version", "GET /healthz\r\n\r\n"],
  ])("survives %s", async (_name, bytes) => {
    const answer = await raw(bytes);
    // An answer for every request (node closes a CONNECT it has no handler for without one).
    if (_name !== "CONNECT") expect(answer).toMatch(/^HTTP\/1\.1 (200|400|404|405|431)/);
    expect(await alive()).toBe(200);
  });

  it("drops an event-stream client that does not read once its backlog passes the cap", async () => {
    const socket = connect(port(), "127.0.0.1");
    socket.on("error", () => {});
    await new Promise((r) => socket.once("connect", r));
    socket.write("GET /events HTTP/1.1\r\nHost: x\r\n\r\n");
    socket.pause(); // never reads
    await eventually(() => server.eventClients() === 1, "the client registered");
    await eventually(() => server.eventClients() === 0, "the client dropped", 30_000);
    socket.destroy();
    expect(await alive()).toBe(200);
  });
});
