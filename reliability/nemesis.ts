/**
 * A randomized fault test of the fleet (a nemesis), on real servers of its own: a private
 * nats-server, three or more `tortmatch run` processes each reaching MariaDB through a TCP proxy of
 * its own, and a stream of inputs, while a schedule drawn from one seed kills instances (the leader
 * too) with kill -9 and restarts them, cuts one instance's database connection, edits rules in
 * transactions of random length (some committed long after their statements ran), sends notices,
 * pins and unpins retained versions, and restarts nats-server. Then a quiet end (every fault
 * healed, a last notice) and a final batch of inputs.
 *
 * The checker is independent of the service's code: it keeps its own model of the rule tables
 * (every committed transaction applied in commit order), matches with the naive matcher of spec
 * section 4 (test/support/naive-match.ts), and counts by comparing sets. It asserts:
 *   - every input has exactly one verdict or one dead letter (nothing lost, nothing doubled);
 *   - after the last quiet notice every instance serves one version, and every verdict of the final
 *     batch equals the naive matcher's on the final tables;
 *   - the verdicts that carry one `rulesVersion` all agree with one rule set the tables held.
 */
import { jetstream, type JetStreamClient } from "@nats-io/jetstream";
import { headers, type NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import mysql from "mysql2/promise";
import { decodeResultText } from "../src/ingest/decode-result.js";
import type { PropertyRow, RuleRow } from "../src/match/rule-table.js";
import type { Decision } from "../src/match/types.js";
import { createRandom } from "../src/seed/generate-dataset.js";
import { runCli, spawnService, type SpawnedService } from "../test/support/cli.js";
import { prepareNaiveMatch } from "../test/support/naive-match.js";
import { freePort, natsServer } from "../test/support/nats-server.js";
import { accountFor, readStream } from "../test/support/nats.js";
import { resultLines, seededDatabase, SMALL_DATASET } from "../test/support/service.js";
import { createTcpProxy, type TcpProxy } from "../test/support/tcp-proxy.js";

export interface NemesisOptions {
  readonly seed: number;
  /** How long faults are injected, ms. */
  readonly durationMs: number;
  readonly instances?: number;
  /** Inputs published a second while faults run. */
  readonly ratePerSecond?: number;
  readonly log?: (line: string) => void;
}

export interface NemesisSummary {
  readonly seed: number;
  readonly durationMs: number;
  readonly inputs: number;
  readonly verdicts: number;
  readonly deadLetters: number;
  readonly faults: Readonly<Record<string, number>>;
  readonly lost: number[];
  readonly duplicated: number[];
  readonly strays: number[];
  /** Rule sets the tables held (the initial one and one a committed transaction). */
  readonly ruleSets: number;
  /** Versions seen in verdicts, and those whose verdicts no single rule set the tables held explains. */
  readonly versions: number;
  readonly unexplainedVersions: string[];
  /** The final batch: inputs, and verdicts that differ from the naive matcher's on the final tables. */
  readonly finalInputs: number;
  readonly finalMismatches: number;
  /** The one version every instance served after the last quiet notice. */
  readonly finalVersion: string | null;
  /** Instances that exited by themselves, with their last log lines (restarted as a supervisor would). */
  readonly selfExits: string[];
}

interface RuleSet {
  readonly rules: RuleRow[];
  readonly properties: PropertyRow[];
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const utcMs = (text: string | null) => (text === null ? null : Date.parse(`${text.replace(" ", "T")}Z`));

/** The tables as the naive matcher reads them (spec section 2's rows, nothing dropped). */
async function readTables(conn: mysql.Connection): Promise<RuleSet> {
  const [rules] = (await conn.query("SELECT id, owner_id, action, priority, min_matched_ms, min_ratio_bp, min_score, state, valid_from, valid_to, is_deleted FROM video_tort_rule ORDER BY id")) as unknown as [Record<string, string | number | null>[]];
  const [properties] = (await conn.query("SELECT id, rule_id, kind, value, state, is_deleted FROM video_tort_rule_property ORDER BY id")) as unknown as [Record<string, string | number | null>[]];
  return {
    rules: rules.map((r) => ({
      id: Number(r.id), ownerId: Number(r.owner_id), action: String(r.action), priority: Number(r.priority), minMatchedMs: Number(r.min_matched_ms),
      minRatioBp: Number(r.min_ratio_bp), minScore: String(r.min_score), state: Number(r.state), validFromMs: utcMs(r.valid_from as string | null), validToMs: utcMs(r.valid_to as string | null),
      isDeleted: Number(r.is_deleted), mtimeMs: 0,
    })),
    properties: properties.map((p) => ({ id: Number(p.id), ruleId: Number(p.rule_id), kind: String(p.kind), value: String(p.value), state: Number(p.state), isDeleted: Number(p.is_deleted), mtimeMs: 0 })),
  };
}

/** One edit, as SQL and as the same change to the checker's model. */
interface Edit {
  readonly sql: string;
  apply(model: RuleSet): void;
}

function randomEdit(random: () => number, model: RuleSet): Edit {
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(random() * xs.length)]!;
  if (random() < 0.6) {
    const id = pick(model.rules).id;
    const field = pick(["priority", "state", "min_ratio_bp", "action", "min_score", "min_matched_ms"] as const);
    const value =
      field === "priority" ? Math.floor(random() * 6) - 1
      : field === "state" ? (random() < 0.7 ? 1 : 0)
      : field === "min_ratio_bp" ? pick([0, 0, 100, 2_500, 5_000])
      : field === "action" ? pick(["block", "limit", "review", "claim"])
      : field === "min_score" ? pick(["0.000", "0.500", "0.800", "0.930"])
      : pick([0, 1_000, 30_000]);
    const key = ({ priority: "priority", state: "state", min_ratio_bp: "minRatioBp", action: "action", min_score: "minScore", min_matched_ms: "minMatchedMs" } as const)[field];
    return {
      sql: `UPDATE video_tort_rule SET ${field} = ${typeof value === "string" ? `'${value}'` : value} WHERE id = ${id}`,
      apply: (m) => {
        const rule = m.rules.find((r) => r.id === id)!;
        (rule as { -readonly [K in keyof RuleRow]: RuleRow[K] })[key] = value as never;
      },
    };
  }
  const id = pick(model.properties).id;
  if (random() < 0.5) {
    const state = random() < 0.7 ? 1 : 0;
    return { sql: `UPDATE video_tort_rule_property SET state = ${state} WHERE id = ${id}`, apply: (m) => void ((m.properties.find((p) => p.id === id) as { state: number }).state = state) };
  }
  const value = pick(model.properties.filter((p) => p.kind === "asset")).value;
  return { sql: `UPDATE video_tort_rule_property SET value = '${value}' WHERE id = ${id} AND kind = 'asset'`, apply: (m) => {
    const p = m.properties.find((x) => x.id === id)! as { kind: string; value: string };
    if (p.kind === "asset") p.value = value;
  } };
}

const clone = (s: RuleSet): RuleSet => ({ rules: s.rules.map((r) => ({ ...r })), properties: s.properties.map((p) => ({ ...p })) });
const sameDecision = (a: Decision, b: { action: string; ruleId: number | null; hits: unknown }) =>
  a.action === b.action && a.ruleId === b.ruleId && JSON.stringify(a.hits) === JSON.stringify(b.hits);

export async function runNemesis(options: NemesisOptions): Promise<NemesisSummary> {
  const say = options.log ?? ((line: string) => console.log(line));
  const random = createRandom(options.seed);
  const count = options.instances ?? 3;
  const rate = options.ratePerSecond ?? 60;
  const faults: Record<string, number> = {};
  const fault = (name: string, detail = "") => {
    faults[name] = (faults[name] ?? 0) + 1;
    say(`  ${new Date().toISOString()} ${name}${detail ? ` ${detail}` : ""}`);
  };

  const server = natsServer({ port: await freePort(), name: `nemesis-${options.seed}` });
  await server.start();
  const db = await seededDatabase(SMALL_DATASET);
  const editor = await mysql.createConnection({ uri: db.url, dateStrings: true });
  await editor.query("SET time_zone = '+00:00'");
  const ruleSets: RuleSet[] = [await readTables(editor)];
  let model = clone(ruleSets[0]!);
  const proxies: TcpProxy[] = [];
  const instances: { svc: SpawnedService | null; env: Record<string, string>; url: string }[] = [];
  /** Instances that exited by themselves (a start while nats-server was down exits 1, by design): restarted as a supervisor would. */
  const selfExits: string[] = [];
  let supervising = true;
  const launch = (i: number) => {
    const inst = instances[i]!;
    const svc = spawnService(inst.env);
    inst.svc = svc;
    void svc.exited.then(async (code) => {
      if (inst.svc !== svc || !supervising) return; // killed by the nemesis, or the run is over
      const last = svc.log().trim().split("\n").slice(-3).join(" | ").slice(0, 600);
      selfExits.push(`instance ${i} exited ${code}: ${last}`);
      say(`  instance ${i} exited by itself (${code}); restarting it: ${last}`);
      await sleep(1_000);
      if (inst.svc === svc && supervising) launch(i);
    });
  };
  const nc: NatsConnection = await connect({ servers: server.url, maxReconnectAttempts: -1, reconnectTimeWait: 200, name: "nemesis" });
  const js: JetStreamClient = jetstream(nc, { timeout: 3_000 });
  const cliEnv = { NATS_URL: server.url, DATABASE_URL: db.url };
  const inputs: { k: number; line: string; seq: number }[] = [];
  const pending: Promise<unknown>[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const proxy = await createTcpProxy(Number(new URL(db.url).port || 3306));
      await proxy.up();
      proxies.push(proxy);
      const url = new URL(db.url);
      url.port = String(proxy.port);
      const port = await freePort();
      const env = {
        NATS_URL: server.url, DATABASE_URL: url.toString(), TORT_OPS_PORT: String(port), LOG_LEVEL: "warn",
        TORT_LEASE_MS: "2000", TORT_LEADER_WAIT_MS: "3000", TORT_REFRESH_INTERVAL_MS: "5000", TORT_MIN_REFRESH_GAP_MS: "200",
        TORT_ACK_WAIT_MS: "4000", TORT_PUBLISH_TIMEOUT_MS: "1500", TORT_NAK_DELAY_MS: "200", TORT_DUPLICATE_WINDOW_MS: "600000",
        TORT_RETRY_BASE_MS: "100", TORT_RETRY_MAX_MS: "1000", TORT_SHUTDOWN_TIMEOUT_MS: "5000",
      };
      instances.push({ svc: null, env, url: `http://127.0.0.1:${port}` });
      launch(i);
    }
    const status = async (i: number) => {
      try {
        return (await (await fetch(`${instances[i]!.url}/status.json`, { signal: AbortSignal.timeout(1_000) })).json()) as { ready: boolean; snapshot: { version: string } | null; fleet: { role: string } };
      } catch {
        return null;
      }
    };

    // Faults start once every instance is ready (a start while nats-server is down exits 1 by design).
    for (let tries = 0; tries < 240; tries++) {
      if ((await Promise.all(instances.map((_, i) => status(i)))).every((st) => st?.ready === true)) break;
      await sleep(250);
    }

    // Inputs: a steady stream, each published until its PubAck (the same Msg-Id after a failure).
    const lines = resultLines(Math.ceil((rate * options.durationMs) / 1000) + 2_000, 0.02, { ...SMALL_DATASET, seed: options.seed });
    let next = 0;
    const publish = async (line: string) => {
      const k = next++;
      const h = headers();
      h.set("Nats-Msg-Id", `nemesis-${k}`);
      for (;;) {
        try {
          const ack = await js.publish("fingerprint.results.nemesis", line, { headers: h, timeout: 3_000 });
          inputs.push({ k, line, seq: ack.seq });
          return;
        } catch {
          await sleep(200);
        }
      }
    };
    let publishing = true;
    const publisher = (async () => {
      while (publishing && next < lines.length - 2_000) {
        const started = Date.now();
        await Promise.all(Array.from({ length: Math.max(1, Math.round(rate / 10)) }, () => publish(lines[next]!)));
        await sleep(Math.max(0, 100 - (Date.now() - started)));
      }
    })();

    // Commits in commit order: the checker's model follows the tables exactly.
    let commitLock: Promise<void> = Promise.resolve();
    const edit = async () => {
      // Drawn before anything is awaited: the schedule is the seed's, whatever the timing.
      const edits = Array.from({ length: 1 + Math.floor(random() * 3) }, () => randomEdit(random, model));
      const holdMs = Math.floor(random() * 8_000);
      const conn = await mysql.createConnection({ uri: db.url });
      try {
        await conn.query("SET time_zone = '+00:00'");
        await conn.beginTransaction();
        for (const e of edits) await conn.query(e.sql);
        fault("edit", `${edits.length} statement(s), committed ${holdMs} ms later`);
        await sleep(holdMs);
        const turn = commitLock.then(async () => {
          await conn.commit();
          for (const e of edits) e.apply(model);
          ruleSets.push(clone(model));
        });
        commitLock = turn.catch(() => {});
        await turn;
      } finally {
        await conn.end();
      }
    };

    const deadline = Date.now() + options.durationMs;
    let pinned = false;
    while (Date.now() < deadline) {
      await sleep(500 + Math.floor(random() * 2_000));
      const roll = random();
      if (roll < 0.18) {
        // kill -9 an instance, the leader half the time; restart it a little later.
        const [toLeader, any, downMs] = [random() < 0.5, Math.floor(random() * count), 500 + Math.floor(random() * 2_500)];
        const statuses = await Promise.all(instances.map((_, i) => status(i)));
        const leader = statuses.findIndex((s) => s?.fleet.role === "leader");
        const i = leader >= 0 && toLeader ? leader : any;
        const target = instances[i]!;
        if (target.svc === null) continue;
        fault("kill -9", `instance ${i}${i === leader ? " (the leader)" : ""}`);
        const victim = target.svc;
        target.svc = null;
        victim.child.kill("SIGKILL");
        await victim.exited;
        pending.push(sleep(downMs).then(() => launch(i)));
      } else if (roll < 0.3) {
        const i = Math.floor(random() * count);
        const ms = 2_000 + Math.floor(random() * 6_000);
        fault("cut database", `instance ${i} for ${ms} ms`);
        await proxies[i]!.down();
        pending.push(sleep(ms).then(() => proxies[i]!.up()));
      } else if (roll < 0.55) {
        pending.push(edit());
      } else if (roll < 0.72) {
        fault("notice");
        nc.publish("tort.rules.changed");
      } else if (roll < 0.82) {
        const which = random();
        if (pinned) {
          fault("unpin");
          await runCli(["rules", "unpin"], cliEnv, 20_000);
          pinned = false;
        } else {
          const listed = await runCli(["rules", "versions", "--json"], cliEnv, 20_000);
          const versions = listed.code === 0 ? (JSON.parse(listed.stdout) as { version: string }[]) : [];
          if (versions.length === 0) continue;
          const version = versions[Math.floor(which * versions.length)]!.version;
          const pin = await runCli(["rules", "pin", version], cliEnv, 20_000);
          fault("pin", `${version}: ${pin.code === 0 ? "pinned" : "refused"}`);
          pinned = pin.code === 0;
        }
      } else if (roll < 0.9) {
        const ms = 500 + Math.floor(random() * 2_000);
        fault("restart nats-server", `down ${ms} ms`);
        await server.stop();
        await sleep(ms);
        await server.start();
      }
    }

    // The quiet end: every fault healed, the pin lifted, a last notice, every instance on one version.
    say("  quiet: healing every fault");
    await Promise.all(pending);
    await commitLock;
    for (const p of proxies) await p.up().catch(() => {});
    instances.forEach((inst, i) => inst.svc === null && launch(i));
    await runCli(["rules", "unpin"], cliEnv, 20_000);
    publishing = false;
    await publisher;
    const final = ruleSets[ruleSets.length - 1]!;
    let finalVersion: string | null = null;
    for (let tries = 0; finalVersion === null && tries < 120; tries++) {
      if (tries % 10 === 0) nc.publish("tort.rules.changed");
      await sleep(500);
      const versions = (await Promise.all(instances.map((_, i) => status(i)))).map((s) => (s?.ready ? (s.snapshot?.version ?? null) : null));
      if (versions[0] !== null && versions.every((v) => v === versions[0])) finalVersion = versions[0]!;
    }
    say(`  quiet: every instance serves ${finalVersion ?? "(no single version)"}`);
    if (finalVersion === null) {
      for (let i = 0; i < count; i++) {
        const s = (await status(i)) as unknown as { ready: boolean; snapshot: { version: string } | null; fleet: unknown; ruleCache: unknown } | null;
        say(`  instance ${i}: ${JSON.stringify({ ready: s?.ready, version: s?.snapshot?.version, fleet: s?.fleet, ruleCache: s?.ruleCache }).slice(0, 1500)}`);
        say(instances[i]!.svc?.log().split("\n").slice(-15).join("\n") ?? "(not running)");
        say(`  exits: ${selfExits.join("\n  ")}`);
      }
    }
    const finalFrom = inputs.length;
    for (let k = 0; k < 500; k++) await publish(lines[next]!);
    const finalInputs = inputs.slice(finalFrom);

    // Everything settled: a verdict or a dead letter for every input published.
    const settledSeqs = async () => {
      const verdicts = await readStream(nc, "TORT_VERDICTS");
      const dead = await readStream(nc, "TORT_DEADLETTER");
      return { verdicts, dead };
    };
    let out = await settledSeqs();
    for (let tries = 0; tries < 120 && out.verdicts.length + out.dead.length < inputs.length; tries++) {
      await sleep(1_000);
      out = await settledSeqs();
    }
    const verdicts = out.verdicts.map((m) => m.json<{ action: string; ruleId: number | null; hits: unknown; rulesVersion: string; source: { seq: number } }>());
    const deadSeqs = out.dead.map((m) => Number(m.headers?.get("Tort-Source-Seq")));
    const { lost, duplicated, strays } = accountFor(
      inputs.map((i) => ({ seq: i.seq, valid: decodeResultText(i.line).ok })),
      verdicts.map((v) => v.source.seq),
      deadSeqs,
    );

    // Each version's verdicts against the rule sets the tables held, newest first.
    const lineOf = new Map(inputs.map((i) => [i.seq, i.line]));
    const byVersion = new Map<string, typeof verdicts>();
    for (const v of verdicts) byVersion.set(v.rulesVersion, [...(byVersion.get(v.rulesVersion) ?? []), v]);
    const matchers = new Map<RuleSet, ReturnType<typeof prepareNaiveMatch>>();
    const decide = (set: RuleSet, seq: number) => {
      const r = decodeResultText(lineOf.get(seq)!);
      if (!r.ok) throw new Error(`a verdict for an invalid input (seq ${seq})`);
      if (!matchers.has(set)) matchers.set(set, prepareNaiveMatch(set.rules, set.properties));
      return matchers.get(set)!(r.value);
    };
    const unexplainedVersions: string[] = [];
    for (const [version, group] of byVersion) {
      const explains = (set: RuleSet) => group.every((v) => sameDecision(decide(set, v.source.seq), v));
      if (![...ruleSets].reverse().some(explains)) unexplainedVersions.push(version);
    }
    const finalSeqs = new Set(finalInputs.map((i) => i.seq));
    const finalMismatches = verdicts.filter((v) => finalSeqs.has(v.source.seq) && (v.rulesVersion !== finalVersion || !sameDecision(decide(final, v.source.seq), v))).length;
    return {
      seed: options.seed,
      durationMs: options.durationMs,
      inputs: inputs.length,
      verdicts: verdicts.length,
      deadLetters: deadSeqs.length,
      faults,
      lost,
      duplicated,
      strays,
      ruleSets: ruleSets.length,
      versions: byVersion.size,
      unexplainedVersions,
      finalInputs: finalInputs.length,
      finalMismatches,
      finalVersion,
      selfExits,
    };
  } finally {
    supervising = false;
    for (const inst of instances) inst.svc?.child.kill("SIGKILL");
    await Promise.all(instances.map((i) => i.svc?.exited));
    for (const p of proxies) await p.down().catch(() => {});
    await nc.close().catch(() => {});
    await server.stop();
    await editor.end().catch(() => {});
    await db.drop().catch(() => {});
  }
}
