/**
 * The Stately inspector for the whole actor system. @statelyai/inspect's own
 * bridge server (`createInspectorServer`) listens on every interface and opens
 * a browser; this bridge speaks the same protocol — a page that embeds the
 * Stately inspector and relays events from a WebSocket — but listens on
 * 127.0.0.1 only, and keeps a bounded replay buffer for late browsers.
 */
import { createWebSocketInspector } from "@statelyai/inspect";
import { createServer } from "node:http";
import { WebSocket, WebSocketServer } from "ws";
import type { InspectionEvent, Observer } from "xstate";

/** Events replayed to a browser that connects late: at most this many, and at most INSPECTOR_REPLAY_BYTES. */
export const INSPECTOR_REPLAY = 500;
export const INSPECTOR_REPLAY_BYTES = 4 * 1024 * 1024;
/** Largest WebSocket message the bridge accepts. */
export const INSPECTOR_MAX_PAYLOAD = 1024 * 1024;

function bridgePage(wsUrl: string, inspectorUrl: string): string {
  return `<!doctype html><html><head><meta charset="utf-8"><title>tortmatch · Stately inspector</title>
<style>html,body{height:100%;margin:0}iframe{width:100%;height:100%;border:0}</style></head>
<body><iframe id="inspector" src="${inspectorUrl}"></iframe><script>
const iframe = document.getElementById("inspector"); const buffer = []; let connected = false;
window.addEventListener("message", (e) => { if (e.data && e.data.type === "@statelyai.connected") { connected = true; buffer.splice(0).forEach((ev) => iframe.contentWindow.postMessage(ev, "*")); } });
const ws = new WebSocket(${JSON.stringify(wsUrl)});
ws.onmessage = (m) => { const ev = JSON.parse(m.data); connected ? iframe.contentWindow.postMessage(ev, "*") : buffer.push(ev); };
</script></body></html>`;
}

type SnapshotLike = { version: string; counts: unknown; assetIndex: unknown };
const isSnapshot = (x: unknown): x is SnapshotLike => typeof x === "object" && x !== null && "assetIndex" in x && "version" in x;

/**
 * Make an inspection event small and JSON-safe wherever the rule snapshot
 * appears in it (context, a load's input and output, promise events): the
 * snapshot becomes its version and counts; typed arrays, Sets and Maps become
 * short descriptions; ±Infinity and NaN become strings; cycles are cut.
 */
export function serializeForInspector<T>(event: T): T {
  const seen = new WeakSet<object>();
  const text = JSON.stringify(event, (_key, value: unknown) => {
    if (typeof value === "number") return Number.isFinite(value) ? value : String(value);
    if (typeof value !== "object" || value === null) return value;
    if (isSnapshot(value)) return { version: value.version, counts: value.counts };
    if (ArrayBuffer.isView(value)) return `[${value.constructor.name} × ${(value as unknown as { length: number }).length}]`;
    if (value instanceof Set) return `[Set × ${value.size}]`;
    if (value instanceof Map) return `[Map × ${value.size}]`;
    if (seen.has(value)) return "[circular]";
    seen.add(value);
    return value;
  });
  return text === undefined ? event : (JSON.parse(text) as T);
}

/**
 * An inspection event made light before @statelyai/inspect sees it. The library converts each
 * `@xstate.snapshot` event by stringifying the whole actor snapshot (to a depth of 10) before any
 * option of ours runs: the rule snapshot's typed arrays, element by element, each time the rule
 * cache's state changes (hundreds of MB of garbage, a slow instance). Here the snapshot is cut down
 * first to what the inspector shows (state, status, context without the rules, output, error),
 * and the children to their ids.
 */
export function lightenInspectionEvent(event: InspectionEvent): InspectionEvent {
  if (event.type !== "@xstate.snapshot") return event;
  const s = event.snapshot as { status?: unknown; value?: unknown; context?: unknown; output?: unknown; error?: unknown; children?: Record<string, unknown> };
  const light = {
    status: s.status,
    value: s.value,
    context: serializeForInspector(s.context),
    output: serializeForInspector(s.output),
    error: s.error === undefined ? undefined : String((s.error as Error)?.message ?? s.error),
    children: Object.fromEntries(Object.keys(s.children ?? {}).map((id) => [id, { id }])),
  };
  return { ...event, snapshot: light as unknown as typeof event.snapshot };
}

export interface InspectorBridge {
  /** Open this in a browser (the embedded Stately UI needs internet there). */
  readonly url: string;
  /** Pass to createActor({ inspect }). */
  readonly inspect: Observer<InspectionEvent>;
  close(): Promise<void>;
}

export async function startInspector(options: { port: number; inspectorUrl?: string }): Promise<InspectorBridge> {
  const host = "127.0.0.1";
  const portOf = () => (http.address() as { port: number } | null)?.port ?? 0;
  const replay: string[] = [];
  let wsUrl = "";
  const http = createServer((_req, res) => {
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    res.end(bridgePage(wsUrl, options.inspectorUrl ?? "https://stately.ai/inspect"));
  });
  let replayBytes = 0;
  const wss = new WebSocketServer({
    server: http,
    maxPayload: INSPECTOR_MAX_PAYLOAD,
    // The bridge's own page, or a client that is not a browser (the in-process inspector): no other site may connect.
    verifyClient: ({ origin }: { origin?: string }) => origin === undefined || origin === `http://${host}:${portOf()}` || origin === `http://localhost:${portOf()}`,
  });
  wss.on("connection", (ws) => {
    // An oversized or malformed frame closes that connection (ws sends 1009/1002); it must never reach the process.
    ws.on("error", () => ws.terminate());
    for (const msg of replay) ws.send(msg);
    ws.on("message", (data) => {
      const msg = data.toString();
      replay.push(msg);
      replayBytes += msg.length;
      while (replay.length > INSPECTOR_REPLAY || replayBytes > INSPECTOR_REPLAY_BYTES) replayBytes -= replay.shift()!.length;
      for (const client of wss.clients) if (client !== ws && client.readyState === WebSocket.OPEN) client.send(msg);
    });
  });
  await new Promise<void>((resolve, reject) => {
    http.once("error", reject);
    http.listen(options.port, host, () => resolve());
  });
  const port = portOf();
  wsUrl = `ws://${host}:${port}`;
  const inspector = createWebSocketInspector({ url: wsUrl, serialize: serializeForInspector });
  return {
    url: `http://${host}:${port}/`,
    inspect: { next: (event) => inspector.inspect.next?.(lightenInspectionEvent(event)) },
    async close() {
      inspector.stop();
      for (const client of wss.clients) client.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}
