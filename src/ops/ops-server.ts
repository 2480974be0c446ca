/**
 * The ops HTTP server, on 127.0.0.1 by default: /healthz (alive), /readyz
 * (a snapshot is loaded and NATS is connected — separate from liveness so a
 * slow first load never gets the pod killed), /metrics (Prometheus), the
 * status page (/), /status.json, /chart.json and /events (Server-Sent Events).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Registry } from "prom-client";
import { MAX_PROFILE_SECONDS, ProfileBusyError, takeHeapProfile } from "./heap-profile.js";
import { STATUS_PAGE } from "./status-page.js";
import { ruleCacheChart, type Status } from "./status.js";

export interface OpsServerOptions {
  readonly host: string;
  readonly port: number;
  readonly registry: Registry;
  /** Serve /debug/heap-profile (TORT_OPS_DEBUG=on); off, it answers 404 saying how to turn it on. */
  readonly debug?: boolean;
  /** Serve the status page and its data (/, /status.json, /history.json, /chart.json, /events); off (false), each answers 404 saying how to turn them on. Default on. */
  readonly pages?: boolean;
  readonly status: () => Status;
  /** The charts' samples and the rule-cache transitions to mark on them (/history.json). */
  readonly history?: () => unknown;
  /** How often /events pushes the status. */
  readonly pushEveryMs?: number;
  /** Most /events clients at once (each is an open connection). */
  readonly maxEventClients?: number;
  /** An /events client whose unsent bytes pass this is dropped (it does not read). */
  readonly maxEventBufferBytes?: number;
}

/** The status page and what it reads: an operator's view, not a scraper's. */
const PAGE_PATHS = new Set(["/", "/status", "/status.json", "/history.json", "/chart.json", "/events"]);

/** Whether a host name or address is the loopback interface (only this machine can reach it). */
export const isLoopback = (host: string) => host === "localhost" || host === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);

/** TORT_OPS_PAGES: `auto` serves the status page on a loopback listener only. */
export const servesPages = (host: string, setting: "auto" | "on" | "off") => setting === "on" || (setting === "auto" && isLoopback(host));

/** Default cap on one /events client's unsent bytes. */
export const MAX_EVENT_BUFFER_BYTES = 1024 * 1024;

/** The query of a request target ("" when none). */
export function requestQuery(target: string | undefined): string {
  const t = target ?? "";
  const q = t.indexOf("?");
  return q === -1 ? "" : t.slice(q + 1).split("#")[0]!;
}

/** The path of a request target, without parsing it as a URL (which throws on `//`, `http://[`, …). */
export function requestPath(target: string | undefined): string {
  const t = target ?? "/";
  const q = t.search(/[?#]/);
  return q === -1 ? t : t.slice(0, q);
}

export interface OpsServer {
  /** Where it listens, e.g. http://127.0.0.1:9464/ */
  readonly url: string;
  /** Open /events connections now. */
  eventClients(): number;
  close(): Promise<void>;
}

/** Every `everyMs`, the status to each /events client; one that does not read is dropped before its backlog passes `maxBuffer`. */
function pushStatus(clients: Set<ServerResponse>, status: () => Status, everyMs: number, maxBuffer: number): NodeJS.Timeout {
  const timer = setInterval(() => {
    if (clients.size === 0) return;
    const data = `data: ${JSON.stringify(status())}\n\n`;
    for (const c of clients) {
      if (c.writableLength > maxBuffer) {
        clients.delete(c);
        c.destroy();
        continue;
      }
      c.write(data);
    }
  }, everyMs);
  timer.unref();
  return timer;
}

const json = (res: ServerResponse, code: number, body: unknown) => {
  res.writeHead(code, { "content-type": "application/json", "cache-control": "no-store" });
  res.end(JSON.stringify(body));
};

/** /debug/heap-profile?seconds=N: a sampling heap profile over N seconds, as a .heapprofile file. */
function serveHeapProfile(req: IncomingMessage, res: ServerResponse): void {
  const seconds = Number(new URLSearchParams(requestQuery(req.url)).get("seconds") ?? "10");
  if (!Number.isInteger(seconds) || seconds < 1 || seconds > MAX_PROFILE_SECONDS) {
    return json(res, 400, { error: `seconds must be an integer from 1 to ${MAX_PROFILE_SECONDS}` });
  }
  takeHeapProfile(seconds).then(
    (profile) => {
      res.writeHead(200, {
        "content-type": "application/json",
        "content-disposition": `attachment; filename="tortmatch-${Date.now()}.heapprofile"`,
        "cache-control": "no-store",
      });
      res.end(profile);
    },
    (err: unknown) => json(res, err instanceof ProfileBusyError ? 409 : 500, { error: (err as Error).message }),
  );
}

export async function startOpsServer(o: OpsServerOptions): Promise<OpsServer> {
  const clients = new Set<ServerResponse>();
  const maxClients = o.maxEventClients ?? 32;
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const path = requestPath(req.url);
    if (req.method !== "GET") return json(res, 405, { error: "GET only" });
    if (o.pages === false && PAGE_PATHS.has(path)) {
      return json(res, 404, { error: "the status page is off on a listener beyond loopback: TORT_OPS_PAGES=on turns it on (it shows the rules versions, the fleet and the configuration, secrets redacted)" });
    }
    switch (path) {
      case "/healthz":
        return json(res, 200, { status: "alive" });
      case "/readyz": {
        const s = o.status();
        return json(res, s.ready ? 200 : 503, { ready: s.ready, snapshotLoaded: s.snapshot !== null, natsConnected: s.natsConnected, ruleCache: s.ruleCache.state });
      }
      case "/metrics":
        o.registry.metrics().then(
          (text) => {
            res.writeHead(200, { "content-type": o.registry.contentType });
            res.end(text);
          },
          (err: unknown) => json(res, 500, { error: String(err) }),
        );
        return;
      case "/status.json":
        return json(res, 200, o.status());
      case "/history.json":
        return json(res, 200, o.history?.() ?? { samples: [], marks: [] });
      case "/chart.json":
        return json(res, 200, ruleCacheChart());
      case "/events":
        if (clients.size >= maxClients) return json(res, 503, { error: "too many status page clients" });
        res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-store", connection: "keep-alive" });
        res.write(`data: ${JSON.stringify(o.status())}\n\n`);
        clients.add(res);
        req.on("close", () => clients.delete(res));
        return;
      case "/debug/heap-profile":
        return o.debug === true ? serveHeapProfile(req, res) : json(res, 404, { error: "debug endpoints are off: TORT_OPS_DEBUG=on turns them on" });
      case "/":
      case "/status":
        res.writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" });
        return res.end(STATUS_PAGE);
      default:
        return json(res, 404, { error: "not found" });
    }
  };
  // No request may stop the service: a handler failure is a 500 for that request alone.
  const server: Server = createServer({ maxHeaderSize: 16 * 1024, requestTimeout: 30_000 }, (req, res) => {
    try {
      handle(req, res);
    } catch (err) {
      if (!res.headersSent) json(res, 500, { error: "internal error" });
      else res.destroy();
      void err;
    }
  });
  // Malformed request lines, oversized headers, garbage: answer 400 (or 431) and close, never throw.
  server.on("clientError", (err: NodeJS.ErrnoException, socket) => {
    if (socket.writable && !socket.destroyed) {
      const status = err.code === "HPE_HEADER_OVERFLOW" ? "431 Request Header Fields Too Large" : "400 Bad Request";
      socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
    } else {
      socket.destroy();
    }
  });
  const timer = pushStatus(clients, o.status, o.pushEveryMs ?? 500, o.maxEventBufferBytes ?? MAX_EVENT_BUFFER_BYTES);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(o.port, o.host, () => resolve());
  });
  const address = server.address() as { port: number };
  return {
    url: `http://${o.host}:${address.port}/`,
    eventClients: () => clients.size,
    async close() {
      clearInterval(timer);
      for (const c of clients) c.end();
      clients.clear();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
