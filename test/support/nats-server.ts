/**
 * nats-server processes of a test's own (Debian's /usr/sbin/nats-server), on
 * loopback ports with their own JetStream store: to restart, to stop, to cluster.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const NATS_SERVER_BIN = process.env.NATS_SERVER_BIN ?? "/usr/sbin/nats-server";

export const freePort = () =>
  new Promise<number>((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });

const waitForPort = async (port: number, timeoutMs = 15_000) => {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const open = await new Promise<boolean>((resolve) => {
      const s = connect(port, "127.0.0.1");
      s.once("connect", () => (s.destroy(), resolve(true)));
      s.once("error", () => resolve(false));
    });
    if (open) return;
    if (Date.now() > deadline) throw new Error(`nats-server did not listen on ${port}`);
    await new Promise((r) => setTimeout(r, 100));
  }
};

export interface NatsServer {
  readonly url: string;
  readonly name: string;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** One server, or a member of a cluster when `routes` are given. Starts stopped. */
export function natsServer(o: { port: number; name: string; storeDir?: string; cluster?: { port: number; routes: number[] } }): NatsServer {
  const dir = o.storeDir ?? mkdtempSync(join(tmpdir(), `nats-${o.name}-`));
  const conf = join(dir, "server.conf");
  const cluster = o.cluster
    ? `cluster { name: tortmatch_test, listen: 127.0.0.1:${o.cluster.port}, routes: [${o.cluster.routes.map((p) => `nats-route://127.0.0.1:${p}`).join(", ")}] }`
    : "";
  writeFileSync(conf, `server_name: ${o.name}\nlisten: 127.0.0.1:${o.port}\njetstream { store_dir: "${join(dir, "js")}" }\n${cluster}\n`);
  let child: ChildProcess | null = null;
  return {
    url: `nats://127.0.0.1:${o.port}`,
    name: o.name,
    async start() {
      child = spawn(NATS_SERVER_BIN, ["-c", conf], { stdio: "ignore" });
      await waitForPort(o.port);
    },
    async stop() {
      const c = child;
      child = null;
      if (!c || c.exitCode !== null) return;
      const exited = new Promise((r) => c.once("exit", r));
      c.kill("SIGTERM");
      await exited;
    },
  };
}
