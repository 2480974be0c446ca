/**
 * A TCP proxy to a real server that a test can take down and bring back:
 * "down" means nothing listens on its port and every open connection is cut.
 */
import { createServer, connect, type Server, type Socket } from "node:net";

export interface TcpProxy {
  readonly port: number;
  up(): Promise<void>;
  down(): Promise<void>;
  /** Keep every connection open but forward nothing more, either way (a server that hangs mid-answer). */
  stall(): void;
}

export async function createTcpProxy(targetPort: number, targetHost = "127.0.0.1"): Promise<TcpProxy> {
  // Find a free port, then leave it closed: the proxy starts down.
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, "127.0.0.1", r));
  const port = (probe.address() as { port: number }).port;
  await new Promise<void>((r) => probe.close(() => r()));

  let server: Server | null = null;
  const sockets = new Set<Socket>();
  const pairs = new Set<[Socket, Socket]>();
  let stalled = false;
  const track = (s: Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => s.destroy());
  };
  return {
    port,
    async up() {
      if (server) return;
      server = createServer((client) => {
        const upstream = connect(targetPort, targetHost);
        track(client);
        track(upstream);
        const pair: [Socket, Socket] = [client, upstream];
        pairs.add(pair);
        if (stalled) {
          client.pause();
        } else {
          client.pipe(upstream).pipe(client);
        }
        client.on("close", () => (pairs.delete(pair), upstream.destroy()));
        upstream.on("close", () => client.destroy());
      });
      await new Promise<void>((r) => server!.listen(port, "127.0.0.1", r));
    },
    stall() {
      stalled = true;
      for (const [client, upstream] of pairs) {
        client.unpipe(upstream);
        upstream.unpipe(client);
        client.pause();
        upstream.pause();
      }
    },
    async down() {
      stalled = false;
      const s = server;
      server = null;
      for (const sock of sockets) sock.destroy();
      if (s) await new Promise<void>((r) => s.close(() => r()));
    },
  };
}
