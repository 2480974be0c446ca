/**
 * The status page: one self-contained HTML document (no external assets: the
 * browser of an operator at 3 a.m. may have no internet). It draws the rule-
 * cache state chart and follows /events (Server-Sent Events): live, no reload.
 */
export const STATUS_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tortmatch status</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 16px 24px; color: #1d2330; background: #f7f8fa; }
  h1 { font-size: 20px; margin: 0 0 4px; } h2 { font-size: 15px; margin: 18px 0 6px; }
  .grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(260px, 1fr)); gap: 12px; }
  .card { background: #fff; border: 1px solid #dde1e8; border-radius: 8px; padding: 10px 14px; }
  .big { font-size: 22px; font-weight: 600; } .muted { color: #6b7385; } .bad { color: #b3261e; } .ok { color: #1b7f3b; }
  table { border-collapse: collapse; width: 100%; } td { padding: 2px 6px 2px 0; vertical-align: top; }
  #snapshot td:last-child, #fleet td:last-child { overflow-wrap: anywhere; } #snapshot td:first-child, #fleet td:first-child { white-space: nowrap; }
  svg text { font: 12px system-ui, sans-serif; } .state rect { fill: #fff; stroke: #8a93a6; stroke-width: 1.5; }
  .state.current rect { fill: #2f6fec; stroke: #1a4fb8; } .state.current text { fill: #fff; font-weight: 600; }
  #chart { width: 100%; max-width: 1080px; height: auto; display: block; }
  #edges { columns: 3 260px; font-size: 11px; color: #6b7385; margin: 4px 0 8px; padding-left: 16px; } #edges li.next { color: #1d2330; font-weight: 600; }
  .edge { stroke: #9aa3b5; fill: none; marker-end: url(#arrow); } .edge-label { fill: #6b7385; font-size: 10px; }
  .charts svg { width: 100%; height: 120px; } .line { fill: none; stroke-width: 1.6; } .axis { stroke: #dde1e8; }
  .mark { stroke: #b3261e; stroke-dasharray: 3 3; stroke-width: 1; } .legend { font-size: 11px; }
  #instances { font-size: 11px; margin-top: 8px; width: 100%; } #instances td { padding-right: 6px; white-space: nowrap; }
  #instances td.version, #instances td.id { white-space: normal; overflow-wrap: anywhere; } #instances td.version { min-width: 8em; }
  ol { margin: 0; padding-left: 18px; max-height: 220px; overflow: auto; overflow-wrap: anywhere; } code { font-size: 12px; }
</style></head>
<body>
<h1>tortmatch <span id="ready" class="muted">connecting…</span></h1>
<div class="muted">updated <span id="at">–</span> · up <span id="uptime">–</span> s · <span id="live">waiting for events</span></div>
<h2>Rule cache</h2>
<div class="card"><svg id="chart" viewBox="0 0 1080 290" role="img" aria-label="rule cache state chart"></svg>
<ul id="edges"></ul>
<div>state <b id="state">–</b> · loads <b id="loads">–</b> · attempt <b id="attempt">–</b> · routine refreshes that changed nothing <b id="quiet">–</b> <span id="quietAt" class="muted"></span> <span id="lastError" class="bad"></span></div></div>
<div class="grid">
  <div class="card"><h2>Snapshot</h2><table id="snapshot"></table></div>
  <div class="card"><h2>Fleet</h2><table id="fleet"></table><table id="instances"></table></div>
  <div class="card"><h2>Flow</h2><div class="big"><span id="inFlight">–</span> / <span id="limit">–</span> in flight</div>
    <div id="mode" class="muted">–</div>
    <div><span id="waiting">–</span> waiting for the cache · <span id="throughput">–</span> results/s · <span id="received">–</span> received</div></div>
  <div class="card"><h2>Verdicts</h2><table id="verdicts"></table><div>dead letters <b id="deadLetters">–</b> · retries <b id="retries">–</b></div></div>
</div>
<h2>Last 15 minutes <span class="muted" style="font-weight:400">(dashed: rule-cache transitions)</span></h2>
<div class="grid charts">
  <div class="card"><div class="muted">results/s</div><svg id="c-rate" viewBox="0 0 400 120"></svg></div>
  <div class="card"><div class="muted">consumer lag (messages)</div><svg id="c-lag" viewBox="0 0 400 120"></svg></div>
  <div class="card"><div class="muted">end-to-end latency (ms)</div><svg id="c-latency" viewBox="0 0 400 120"></svg></div>
  <div class="card"><div class="muted">in flight / limit</div><svg id="c-flight" viewBox="0 0 400 120"></svg></div>
  <div class="card"><div class="muted">pull → PubAck (ms), with <code>concurrency: auto</code></div><svg id="c-rtt" viewBox="0 0 400 120"></svg></div>
  <div class="card"><div class="muted">memory (MB)</div><svg id="c-memory" viewBox="0 0 400 120"></svg></div>
</div>
<div class="grid">
  <div class="card"><h2>Recent transitions</h2><ol id="transitions"></ol></div>
  <div class="card"><h2>Recent errors</h2><ol id="errors"></ol></div>
  <div class="card"><h2>Inspector</h2><div id="inspector" class="muted"></div></div>
</div>
<script>
// Columns 230 apart: a 120-wide box and 110 between boxes, room for a two-line label of ~18 characters a line.
const LAYOUT = {
  idle: [10, 30], awaitingLeader: [240, 30], loading: [470, 30], ready: [700, 30], refreshing: [930, 30],
  fetching: [240, 140], publishing: [700, 140], retrying: [930, 140],
  stopping: [240, 250], stopped: [10, 250],
};
const at = (s) => LAYOUT[s] || [20, 140];
const W = 120, H = 36, NS = "http://www.w3.org/2000/svg";
const el = (name, attrs, parent) => { const e = document.createElementNS(NS, name); for (const k in attrs) e.setAttribute(k, attrs[k]); parent && parent.appendChild(e); return e; };
function drawChart(chart) {
  const svg = document.getElementById("chart");
  const defs = el("defs", {}, svg), marker = el("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" }, defs);
  el("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: "#9aa3b5" }, marker);
  const seen = new Set();
  for (const t of chart.transitions) {
    if (t.from === t.to || t.event === "STOP" || seen.has(t.from + ">" + t.to)) continue;
    seen.add(t.from + ">" + t.to);
    const [x1, y1] = at(t.from), [x2, y2] = at(t.to);
    const back = seen.has(t.to + ">" + t.from) ? 8 : 0;
    const a = [x1 + W / 2, y1 + H / 2 + back], b = [x2 + W / 2, y2 + H / 2 + back];
    const dx = b[0] - a[0], dy = b[1] - a[1], len = Math.hypot(dx, dy) || 1;
    const cut = (p, s) => [p[0] + s * dx / len * (Math.abs(dx) > Math.abs(dy) ? W / 2 : H / 2 / Math.max(0.3, Math.abs(dy) / len)), p[1] + s * dy / len * H / 2];
    const p = cut(a, 1), q = cut(b, -1);
    el("path", { class: "edge", d: "M" + p[0] + " " + p[1] + " L" + q[0] + " " + q[1] }, svg);
    // 21 arrows between 10 boxes leave no room for their labels on the arrows: the events are listed
    // under the chart instead, by the state they leave (those of the current state in bold).
    const events = chart.transitions.filter((u) => u.from === t.from && u.to === t.to).map((u) => u.event);
    const item = document.createElement("li");
    item.dataset.from = t.from;
    item.textContent = t.from + " → " + t.to + ": " + events.join(", ");
    document.getElementById("edges").appendChild(item);
  }
  const stop = document.createElement("li");
  stop.textContent = "any state → stopping: STOP";
  document.getElementById("edges").appendChild(stop);
  for (const s of chart.states) {
    const [x, y] = at(s);
    const g = el("g", { class: "state", id: "state-" + s }, svg);
    el("rect", { x, y, width: W, height: H, rx: 10 }, g);
    el("text", { x: x + W / 2, y: y + H / 2 + 4, "text-anchor": "middle" }, g).textContent = s;
  }
}
const set = (id, v) => { document.getElementById(id).textContent = v; };
// Values may come from outside (a pinned version is whatever was written to KV): always escaped.
const esc = (v) => String(v).replace(/[<>&"']/g, (c) => "&#" + c.charCodeAt(0) + ";");
const rows = (id, obj) => { document.getElementById(id).innerHTML = Object.entries(obj).map(([k, v]) => "<tr><td class=muted>" + esc(k) + "</td><td><b>" + esc(v) + "</b></td></tr>").join(""); };
const list = (id, items) => { document.getElementById(id).innerHTML = items.slice().reverse().map((e) => "<li><code>" + e.at.slice(11, 23) + "</code> " + e.state + (e.detail ? " <span class=muted>" + String(e.detail).replace(/[<&]/g, "") + "</span>" : "") + "</li>").join(""); };
function render(s) {
  set("ready", s.ready ? "ready" : "not ready"); document.getElementById("ready").className = s.ready ? "ok" : "bad";
  set("at", s.at.slice(11, 19)); set("uptime", s.uptimeSeconds);
  for (const g of document.querySelectorAll(".state")) g.classList.toggle("current", g.id === "state-" + s.ruleCache.state);
  for (const li of document.querySelectorAll("#edges li")) li.classList.toggle("next", li.dataset.from === s.ruleCache.state);
  set("quiet", s.ruleCache.quietRefreshes.count); set("quietAt", s.ruleCache.quietRefreshes.lastAt ? "(last " + s.ruleCache.quietRefreshes.lastAt.slice(11, 19) + ")" : "");
  set("state", s.ruleCache.state); set("loads", s.ruleCache.loads); set("attempt", s.ruleCache.attempt); set("lastError", s.ruleCache.lastError ? "last error: " + s.ruleCache.lastError : "");
  rows("snapshot", s.snapshot ? { version: s.snapshot.version, "loaded as": s.snapshot.loadKind, "age (s)": s.snapshot.ageSeconds, "rule rows": s.snapshot.ruleRows, "property rows": s.snapshot.propertyRows, "active rules": s.snapshot.activeRules, "skipped rows": s.snapshot.skippedRules + s.snapshot.skippedProperties } : { snapshot: "none yet" });
  const f = s.fleet;
  rows("fleet", f.role === "solo" ? { fleet: "off (TORT_FLEET=off): this instance reads the rule tables itself" } : { instance: f.instanceId, role: f.role, serves: (f.served ?? "–") + " (from " + (f.source ?? "–") + ")", current: f.current ?? "none announced", pinned: f.pinned === null ? "not pinned" : f.pinIgnored === f.pinned ? f.pinned + " (IGNORED: cannot be served)" : f.pinned, "publish error": f.publishError ?? "–", "rule tables": f.tables.readable === false ? "CANNOT BE READ: " + f.tables.reason : f.tables.readable ? "readable" : "not checked yet" });
  document.getElementById("instances").innerHTML = f.instances.length === 0 ? "" : "<tr class=muted><td>id</td><td>role</td><td>state</td><td>version</td><td>in flight</td></tr>" +
    f.instances.map((i) => "<tr><td class=id><code>" + esc(i.id) + "</code></td><td>" + esc(i.role) + "</td><td>" + esc(i.state) + "</td><td class=version>" + esc(i.version ?? "–") + "</td><td>" + esc(i.inFlight + " / " + i.limit) + "</td></tr>").join("");
  set("inFlight", s.flow.inFlight); set("limit", s.flow.limit);
  const cc = s.flow.concurrency;
  set("mode", cc.mode === "auto"
    ? "limit: auto (" + cc.min + "–" + cc.max + ")" + (cc.phase === "probing" ? ", probing the minimum" : "") + (cc.pressure > 0 ? ", memory pressure " + Math.round(cc.pressure * 100) + " %" : "")
    : "limit: fixed (KV concurrency or TORT_CONCURRENCY)"); set("waiting", s.flow.waiting); set("throughput", s.flow.throughputPerSecond); set("received", s.flow.received);
  rows("verdicts", s.verdicts); set("deadLetters", s.deadLetters); set("retries", s.retries);
  list("transitions", s.recent.transitions); list("errors", s.recent.errors);
  set("inspector", s.inspector ? "Stately inspector bridge: " + s.inspector + " (needs internet in the browser)" : "not attached (run with --inspect)");
}
const CHARTS = [
  { id: "c-rate", series: [["resultsPerSecond", "results/s", "#2f6fec"]] },
  { id: "c-lag", series: [["pending", "pending", "#2f6fec"], ["ackPending", "ack pending", "#e07b00"]] },
  { id: "c-latency", series: [["p50Ms", "p50", "#2f6fec"], ["p99Ms", "p99", "#b3261e"]] },
  { id: "c-flight", series: [["inFlight", "in flight", "#2f6fec"], ["limit", "limit", "#8a93a6"]] },
  { id: "c-rtt", series: [["rttMs", "median", "#2f6fec"], ["minRttMs", "minimum", "#1b7f3b"]] },
  { id: "c-memory", series: [["rssMb", "RSS", "#2f6fec"], ["heapUsedMb", "heap used", "#e07b00"], ["snapshotMb", "snapshot", "#1b7f3b"]] },
];
function drawCharts(h) {
  const samples = h.samples;
  if (samples.length === 0) return;
  const t1 = samples[samples.length - 1].t, t0 = Math.min(samples[0].t, t1 - 10000);
  const W = 400, H = 120, L = 44, B = 18;
  const x = (t) => L + (W - L - 6) * (t - t0) / Math.max(1, t1 - t0);
  for (const c of CHARTS) {
    const svg = document.getElementById(c.id);
    svg.innerHTML = "";
    let max = 0;
    for (const s of samples) for (const [k] of c.series) if (s[k] != null && s[k] > max) max = s[k];
    max = max > 0 ? max * 1.1 : 1;
    const y = (v) => H - B - (H - B - 8) * v / max;
    el("line", { class: "axis", x1: L, x2: W - 6, y1: H - B, y2: H - B }, svg);
    el("text", { x: L - 4, y: 12, "text-anchor": "end" }, svg).textContent = max >= 10 ? Math.round(max) : max.toFixed(1);
    el("text", { x: L - 4, y: H - B, "text-anchor": "end" }, svg).textContent = "0";
    el("text", { x: L, y: H - 4 }, svg).textContent = new Date(t0).toISOString().slice(11, 19);
    el("text", { x: W - 6, y: H - 4, "text-anchor": "end" }, svg).textContent = new Date(t1).toISOString().slice(11, 19);
    c.series.forEach(([k, label, color], i) => {
      const pts = samples.filter((s) => s[k] != null).map((s) => x(s.t).toFixed(1) + "," + y(s[k]).toFixed(1)).join(" ");
      el("polyline", { class: "line", stroke: color, points: pts, "data-series": k }, svg);
      // A lone sample (one interval that settled something, after a burst) draws no line: a dot shows it.
      const only = samples.filter((s) => s[k] != null);
      if (only.length === 1) el("circle", { cx: x(only[0].t), cy: y(only[0][k]), r: 2.5, fill: color, "data-series": k }, svg);
      el("text", { class: "legend", x: L + 6 + i * 90, y: 12, fill: color }, svg).textContent = label;
    });
    for (const m of h.marks) {
      const t = Date.parse(m.at);
      if (t < t0 || t > t1) continue;
      const line = el("line", { class: "mark", x1: x(t), x2: x(t), y1: 16, y2: H - B }, svg);
      el("title", {}, line).textContent = m.at.slice(11, 19) + " " + m.state;
    }
  }
}
const pollHistory = () => fetch("history.json").then((r) => r.json()).then((h) => { drawCharts(h); setTimeout(pollHistory, Math.max(1000, h.everyMs || 5000)); }, () => setTimeout(pollHistory, 5000));
pollHistory();
fetch("chart.json").then((r) => r.json()).then(drawChart).then(() => {
  const events = new EventSource("events");
  events.onmessage = (m) => { set("live", "live"); render(JSON.parse(m.data)); };
  events.onerror = () => set("live", "reconnecting…");
});
</script></body></html>`;
