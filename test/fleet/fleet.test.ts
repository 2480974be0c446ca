/**
 * The fleet on the real servers (spec section 9), each instance a process of
 * its own (`tortmatch run`): six started together read the seeded rules once
 * between them, all serve one version and publish the replay's verdicts; a
 * rule change reaches every instance with one database read; pin and unpin;
 * the snapshot bucket deleted and an object corrupted (the database is the
 * fallback, one load per instance); the leader killed with kill -9 in the
 * middle of its load. Rows read are counted by each instance
 * (`tortmatch_rule_rows_read_total`): MariaDB's global Rows_read would count
 * the other test files running at the same time (bench:fleet uses it).
 */
import { Objm } from "@nats-io/obj";
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Config } from "../../src/config.js";
import { encodeSnapshot } from "../../src/fleet/snapshot-codec.js";
import { databaseIdentity } from "../../src/fleet/rules-bucket.js";
import { createRuleLoader } from "../../src/rules/load-rules.js";
import { runCli, spawnService, type SpawnedService } from "../support/cli.js";
import type { TestDatabase } from "../support/database.js";
import { metricValue } from "../support/metrics.js";
import { freePort } from "../support/nats-server.js";
import { connectTest, eventually, publishInputs, readVerdicts, removeTopology, testConfig, uniqueNames } from "../support/nats.js";
import { replayLines, resultLines, seededDatabase } from "../support/service.js";
import { createTcpProxy, type TcpProxy } from "../support/tcp-proxy.js";

/** The seeded rules of the README: 5,000 rules and 180,000 properties. */
const SEEDED = { rules: 5_000, properties: 180_000, seed: 42 };

interface Instance {
  readonly svc: SpawnedService;
  readonly url: string;
}

interface InstanceStatus {
  ready: boolean;
  ruleCache: { state: string; loads: number };
  snapshot: { version: string } | null;
  fleet: { instanceId: string; role: string; source: string | null; current: string | null; pinned: string | null; fetches: number };
}

let db: TestDatabase;
let nc: NatsConnection;
const running: Instance[] = [];
const configs: Config[] = [];

beforeAll(async () => {
  db = await seededDatabase(SEEDED);
  // Written over the past day, as a production table is: an incremental refresh then reads the rows
  // changed since the last read (and the loader's 5 s overlap), not a whole table seeded in one burst.
  for (const table of ["video_tort_rule", "video_tort_rule_property"]) {
    await db.database.pool.query(`UPDATE ${table} SET mtime = UTC_TIMESTAMP(3) - INTERVAL 1 HOUR - INTERVAL ((id * 7919) MOD 86400) SECOND`);
  }
  nc = await connectTest();
});
afterAll(async () => {
  await stop(running);
  for (const c of configs) await removeTopology(nc, c).catch(() => {});
  await nc?.drain();
  await db?.drop();
});

async function launch(env: Record<string, string>): Promise<Instance> {
  const port = await freePort();
  const svc = spawnService({ ...env, TORT_OPS_PORT: String(port), LOG_LEVEL: "info" });
  const instance = { svc, url: `http://127.0.0.1:${port}` };
  running.push(instance);
  return instance;
}

async function stop(instances: readonly Instance[]): Promise<(number | null)[]> {
  for (const i of instances) i.svc.child.kill("SIGTERM");
  const codes = await Promise.all(instances.map((i) => i.svc.exited));
  for (const i of instances) running.splice(running.indexOf(i), 1);
  return codes;
}

const statusOf = async (i: Instance): Promise<InstanceStatus | null> => {
  try {
    return (await (await fetch(`${i.url}/status.json`)).json()) as InstanceStatus;
  } catch {
    return null;
  }
};
const statuses = (instances: readonly Instance[]) => Promise.all(instances.map(statusOf));
const rowsRead = async (i: Instance) => metricValue(await (await fetch(`${i.url}/metrics`)).text(), "tortmatch_rule_rows_read_total");
const totalRowsRead = async (instances: readonly Instance[]) => (await Promise.all(instances.map(rowsRead))).reduce((a, b) => a + b, 0);
const versionOf = (s: InstanceStatus | null) => (s?.ready ? (s.snapshot?.version ?? null) : null);

/** Every instance ready and serving `version` (any one version when not given); resolves with it. */
const allServe = (instances: readonly Instance[], version?: string) => async () => {
  const vs = (await statuses(instances)).map(versionOf);
  const first = vs[0];
  return first !== null && first !== undefined && vs.every((v) => v === first) && (version === undefined || first === version) ? first : null;
};

async function tableRows(): Promise<number> {
  const [[row]] = (await db.database.pool.query({
    sql: "SELECT (SELECT COUNT(*) FROM video_tort_rule) + (SELECT COUNT(*) FROM video_tort_rule_property)",
    rowsAsArray: true,
  })) as unknown as [[[number | string]]];
  return Number(row![0]);
}

/** A TCP proxy to the test database for one describe block (up before its tests, down after them), and the URL through it. */
function databaseProxy() {
  let proxy: TcpProxy | undefined;
  beforeAll(async () => {
    proxy = await createTcpProxy(Number(new URL(db.url).port || 3306));
    await proxy.up();
  });
  afterAll(async () => {
    await proxy?.down();
  });
  return {
    get proxy(): TcpProxy {
      return proxy!;
    },
    url(): string {
      const through = new URL(db.url);
      through.port = String(proxy!.port);
      return through.toString();
    },
  };
}

function fleetEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env = { ...uniqueNames(), DATABASE_URL: db.url, TORT_LEASE_MS: "3000", TORT_LEADER_WAIT_MS: "60000", TORT_REFRESH_INTERVAL_MS: "0", ...extra };
  configs.push(testConfig(db.url, env));
  return env;
}

describe("a fleet of six", () => {
  let env: Record<string, string>;
  let six: Instance[] = [];
  let firstVersion = "";
  let secondVersion = "";

  it("started together, reads the rules about once in all, serves one version and publishes the replay's verdicts", async () => {
    env = fleetEnv();
    const config = configs[configs.length - 1]!;
    const lines = resultLines(3_000, 0.01, SEEDED);
    const seqs = await publishInputs(nc, config, lines);
    six = await Promise.all(Array.from({ length: 6 }, () => launch(env)));
    firstVersion = (await eventually(allServe(six), "six instances ready on one version", 90_000, 200))!;

    const oneLoad = await tableRows();
    const read = await totalRowsRead(six);
    console.log(`fleet of 6: ${read} rows read in all; one load is ${oneLoad} rows (${(read / oneLoad).toFixed(2)}x)`);
    expect(read).toBeGreaterThanOrEqual(oneLoad);
    expect(read).toBeLessThanOrEqual(1.1 * oneLoad);
    const all = (await statuses(six)) as InstanceStatus[];
    expect(all.filter((s) => s.fleet.role === "leader")).toHaveLength(1);
    expect(all.filter((s) => s.fleet.source === "fleet")).toHaveLength(5);
    expect(all.every((s) => s.fleet.current === firstVersion)).toBe(true);

    // `tortmatch fleet --json`: one object per instance, with id, version and state.
    const listed = await runCli(["fleet", "--json"], env);
    expect(listed.code).toBe(0);
    const fleet = JSON.parse(listed.stdout) as { id: string; version: string; state: string; role: string }[];
    expect(fleet.map((f) => f.id).sort()).toEqual(all.map((s) => s.fleet.instanceId).sort());
    expect(fleet.every((f) => f.version === firstVersion && f.state === "ready")).toBe(true);
    // The service framework's INFO carries the live state as well (the explain endpoint's metadata).
    const { Svcm } = await import("@nats-io/services");
    const infos: { id: string; endpoints: { name: string; metadata?: Record<string, string> }[] }[] = [];
    for await (const i of await new Svcm(nc).client({ strategy: "stall", maxWait: 2_000 }).info("tortmatch")) infos.push(i);
    const ours = infos.filter((i) => all.some((s) => s.fleet.instanceId === i.id));
    expect(ours).toHaveLength(6);
    for (const i of ours) expect(i.endpoints[0]!.metadata).toMatchObject({ version: firstVersion, state: "ready", limit: expect.stringMatching(/^[1-9][0-9]*$/), concurrency: "auto" });
    const table = await runCli(["fleet"], env);
    expect(table.stdout.split("\n")[0]).toMatch(/^ID\s+ROLE\s+STATE\s+VERSION/);
    expect(table.stdout.trim().split("\n")).toHaveLength(7);

    // Every verdict, whichever instance made it, is the replay's.
    const reference = await createRuleLoader(db.database).loadFull();
    expect(reference.version).toBe(firstVersion);
    const { replayed, invalidLines } = await replayLines(reference, lines);
    const validSeqs = seqs.filter((_, i) => !invalidLines.includes(i + 1));
    const verdicts = (await eventually(async () => {
      const v = await readVerdicts(nc, config);
      return v.length >= validSeqs.length ? v : null;
    }, "a verdict for every valid input", 60_000, 250))!;
    expect(verdicts).toHaveLength(validSeqs.length);
    const bySeq = new Map(verdicts.map((v) => [v.verdict.source.seq, v.verdict]));
    validSeqs.forEach((seq, k) => {
      const { source: _s, decidedAt: _d, ...want } = replayed[k] as Record<string, unknown>;
      const { source: _s2, decidedAt: _d2, ...got } = bySeq.get(seq)!;
      expect(got).toEqual(want);
    });
  });

  it("a rule change with a notice reaches every instance, read from the database by the leader alone", async () => {
    const before = await Promise.all(six.map(rowsRead));
    const loadsBefore = ((await statuses(six)) as InstanceStatus[]).map((s) => s.ruleCache.loads);
    await db.database.pool.query("UPDATE video_tort_rule SET priority = priority + 1 WHERE id = (SELECT id FROM (SELECT MIN(id) AS id FROM video_tort_rule WHERE state = 1 AND is_deleted = 0) AS r)");
    const started = performance.now();
    nc.publish(env.TORT_RULES_CHANGED_SUBJECT!);
    secondVersion = (await eventually(async () => {
      const v = await allServe(six)();
      return v !== null && v !== firstVersion ? v : null;
    }, "every instance on the new version", 30_000, 20))!;
    console.log(`rule change: every instance served ${secondVersion} ${Math.round(performance.now() - started)} ms after the notice`);
    const after = await Promise.all(six.map(rowsRead));
    const all = (await statuses(six)) as InstanceStatus[];
    const leader = all.findIndex((s) => s.fleet.role === "leader");
    // The followers read nothing and loaded nothing; the leader made one load: incremental, the changed rule.
    all.forEach((s, i) => {
      if (i === leader) return;
      expect(after[i]).toBe(before[i]);
      expect(s.ruleCache.loads).toBe(loadsBefore[i]);
      expect(s.fleet.source).toBe("fleet");
    });
    expect(all[leader]!.ruleCache.loads).toBe(loadsBefore[leader]! + 1);
    expect(after[leader]! - before[leader]!).toBeGreaterThan(0);
    expect(after[leader]! - before[leader]!).toBeLessThan(100);
  });

  it("pins a retained version for every instance, and unpins", async () => {
    const versions = await runCli(["rules", "versions", "--json"], env);
    expect(versions.code).toBe(0);
    const retained = JSON.parse(versions.stdout) as { version: string; rows: number; bytes: number; builtBy: string; current: boolean }[];
    expect(retained.map((v) => v.version)).toEqual([secondVersion, firstVersion]); // newest first
    expect(retained[0]).toMatchObject({ current: true, rows: await tableRows() });
    expect(retained[0]!.bytes).toBeGreaterThan(0);
    const listing = await runCli(["rules", "versions"], env);
    expect(listing.stdout).toMatch(/^VERSION\s+ROWS\s+BYTES\s+BUILT AT\s+BUILT BY/);

    const refused = await runCli(["rules", "pin", "no-such-version"], env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("is not retained");

    const pinned = await runCli(["rules", "pin", firstVersion], env);
    expect(pinned.code).toBe(0);
    await eventually(allServe(six, firstVersion), "every instance on the pinned version", 30_000, 20);
    // From the moment the pin was stored (the server's timestamp of the KV entry).
    const { Kvm } = await import("@nats-io/kv");
    const pinEntry = await (await new Kvm(nc).open(env.TORT_RULES_BUCKET!)).get("pinned");
    console.log(`pin: every instance served the pinned version ${Date.now() - pinEntry!.created.getTime()} ms after it was stored`);
    const metrics = await (await fetch(`${six[0]!.url}/metrics`)).text();
    expect(metricValue(metrics, "tortmatch_rules_pinned")).toBe(1);
    expect(metrics).toContain(`pinned="${firstVersion}"`);
    expect(metrics).toContain(`current="${secondVersion}"`);
    expect(((await statusOf(six[1]!))!).fleet).toMatchObject({ pinned: firstVersion, current: secondVersion });

    expect((await runCli(["rules", "unpin"], env)).code).toBe(0);
    await eventually(allServe(six, secondVersion), "every instance back on the current version", 30_000, 20);
    expect(metricValue(await (await fetch(`${six[0]!.url}/metrics`)).text(), "tortmatch_rules_pinned")).toBe(0);
  });

  it("a pin that cannot be served is refused by the CLI, and ignored alike by every instance when another tool writes it: the fleet follows the tables", async () => {
    const { Kvm } = await import("@nats-io/kv");
    const os = await new Objm(nc).open(env.TORT_SNAPSHOT_BUCKET!);
    const damaged = await encodeSnapshot(await createRuleLoader(db.database).loadFull());
    damaged[damaged.length - 10] = damaged[damaged.length - 10]! ^ 0xff;
    await os.putBlob({ name: "damaged", metadata: { version: "damaged", database: databaseIdentity("default", db.url), builtAt: "2000-01-01T00:00:00.000Z" } }, damaged);
    const refused = await runCli(["rules", "pin", "damaged"], env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("cannot be served by this deployment, not pinned");

    // Written by another tool: every instance tries it, refuses it, ignores it, and says so.
    const kv = await new Kvm(nc).open(env.TORT_RULES_BUCKET!);
    await kv.put("pinned", "damaged");
    await eventually(async () => {
      const texts = await Promise.all(six.map(async (i) => (await fetch(`${i.url}/metrics`)).text()));
      return texts.every((t) => metricValue(t, "tortmatch_rules_pin_ignored") === 1);
    }, "every instance ignoring the pin", 30_000, 50);
    expect(await allServe(six, secondVersion)()).toBe(secondVersion);
    const listed = await runCli(["fleet"], env);
    expect(listed.stdout.match(/damaged \(ignored: cannot be served\)/g)).toHaveLength(6);
    expect(six.some((i) => i.svc.log().includes("the pinned rules version cannot be served"))).toBe(true);

    // A rule change and a notice reach every instance while the ignored pin stands.
    await db.database.pool.query("UPDATE video_tort_rule SET priority = priority + 1 WHERE id = (SELECT id FROM (SELECT MAX(id) AS id FROM video_tort_rule WHERE state = 1 AND is_deleted = 0) AS r)");
    nc.publish(env.TORT_RULES_CHANGED_SUBJECT!);
    const third = (await eventually(async () => {
      const v = await allServe(six)();
      return v !== null && v !== secondVersion ? v : null;
    }, "every instance on the changed rules, pin or not", 30_000, 20))!;
    expect(third).toBe((await createRuleLoader(db.database).loadFull()).version);
    await kv.delete("pinned");
    await os.delete("damaged");
    await eventually(async () => {
      const texts = await Promise.all(six.map(async (i) => (await fetch(`${i.url}/metrics`)).text()));
      return texts.every((t) => metricValue(t, "tortmatch_rules_pin_ignored") === 0);
    }, "no instance ignoring a pin", 30_000, 50);
    secondVersion = third;
  });

  it("a follower's snapshot age is the time since its leader last found its content in the tables, not the version's age", async () => {
    const ages = async () => Promise.all(six.map(async (i) => metricValue(await (await fetch(`${i.url}/metrics`)).text(), "tortmatch_snapshot_age_seconds")));
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    expect(Math.min(...(await ages()))).toBeGreaterThan(2.5);
    // A notice that changes nothing: the leader reads, finds the same content, and confirms it to the fleet.
    const loads = ((await statuses(six)) as InstanceStatus[]).map((s) => s.ruleCache.loads);
    nc.publish(env.TORT_RULES_CHANGED_SUBJECT!);
    await eventually(async () => Math.max(...(await ages())) < 2, "every instance's snapshot age back under 2 s", 30_000, 50);
    const after = (await statuses(six)) as InstanceStatus[];
    expect(after.map(versionOf)).toEqual(six.map(() => secondVersion));
    // Only the leader read: the followers were confirmed, not reloaded.
    expect(after.filter((s, k) => s.ruleCache.loads !== loads[k])).toHaveLength(1);
  });

  it("an instance of another deployment (other rule tables) on the same buckets never serves the fleet's rules: it works alone", async () => {
    const other = await seededDatabase();
    try {
      const stranger = await launch({ ...env, DATABASE_URL: other.url, TORT_LEADER_WAIT_MS: "1000" });
      const own = (await createRuleLoader(other.database).loadFull()).version;
      await eventually(allServe([stranger], own), "the stranger ready on its own tables' version", 60_000, 100);
      const s = (await statusOf(stranger))!;
      expect(s.fleet).toMatchObject({ role: "solo", source: "database" });
      expect(stranger.svc.log()).toContain("another deployment shares this bucket");
      // The fleet is untouched.
      expect(await allServe(six, secondVersion)()).toBe(secondVersion);
      expect(await stop([stranger])).toEqual([0]);
    } finally {
      await other.drop();
    }
  });

  it("with the snapshot bucket deleted, or an object corrupt, a new instance reads the database itself, once", async () => {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.delete(`OBJ_${env.TORT_SNAPSHOT_BUCKET}`);
    const seventh = await launch(env);
    await eventually(allServe([seventh, six[0]!], secondVersion), "the new instance ready on the current version", 60_000, 100);
    const s7 = (await statusOf(seventh))!;
    expect(s7.fleet).toMatchObject({ role: "follower", source: "database" });
    expect(s7.ruleCache.loads).toBe(1);
    expect(await rowsRead(seventh)).toBe(await tableRows());

    // A corrupt object under the announced version's name: refused by the announcement's size or SHA-256, before it is decoded.
    const os = await new Objm(nc).create(env.TORT_SNAPSHOT_BUCKET!);
    const bytes = await encodeSnapshot(await createRuleLoader(db.database).loadFull());
    bytes[bytes.length - 10] = bytes[bytes.length - 10]! ^ 0xff;
    await os.putBlob({ name: secondVersion, metadata: { database: databaseIdentity("default", db.url) } }, bytes);
    const eighth = await launch(env);
    await eventually(allServe([eighth, six[0]!], secondVersion), "the next instance ready on the current version", 60_000, 100);
    expect((await statusOf(eighth))!.fleet.source).toBe("database");
    expect(await rowsRead(eighth)).toBe(await tableRows());
    expect((eighth.svc.log().match(/do not match the SHA-256 its announcement names|bytes in the snapshot store; its announcement says/g) ?? []).length).toBeGreaterThan(0);

    const codes = await stop([...six, seventh, eighth]);
    expect(codes.every((c) => c === 0)).toBe(true);
  });
});

describe("the leader killed with kill -9 in the middle of its load", () => {
  const db$ = databaseProxy();

  it("another instance takes the lease over when it runs out, loads once, and the fleet ends on one version", async () => {
    const env = fleetEnv({ TORT_LEASE_MS: "2000" });
    // The first instance reads through a proxy that will hang mid-load, 100 rows a page.
    const first = await launch({ ...env, DATABASE_URL: db$.url(), TORT_LOAD_PAGE_SIZE: "100" });
    await eventually(async () => {
      const s = await statusOf(first);
      return s?.fleet.role === "leader" && s.ruleCache.state === "loading";
    }, "the first instance leading and loading", 60_000, 20);
    db$.proxy.stall();
    const others = await Promise.all([launch(env), launch(env)]);
    await eventually(async () => (await statuses(others)).every((s) => s?.fleet.role === "follower" && s.ruleCache.state === "awaitingLeader"), "two followers waiting", 60_000, 50);
    const s1 = (await statusOf(first))!;
    expect(s1.ruleCache.state).toBe("loading");
    expect(s1.snapshot).toBeNull();
    expect(await rowsRead(first)).toBeLessThan(await tableRows()); // it really is in the middle

    const killed = performance.now();
    first.svc.child.kill("SIGKILL");
    await first.svc.exited;
    running.splice(running.indexOf(first), 1);
    const version = await eventually(allServe(others), "the two others ready on one version", 60_000, 50);
    console.log(`leader killed mid-load: the others served ${version} ${Math.round(performance.now() - killed)} ms later (lease 2000 ms)`);
    const all = (await statuses(others)) as InstanceStatus[];
    expect(all.map((s) => s.fleet.role).sort()).toEqual(["follower", "leader"]);
    expect(all.every((s) => s.fleet.current === version)).toBe(true);
    const oneLoad = await tableRows();
    expect(await totalRowsRead(others)).toBe(oneLoad);
    expect(await stop(others)).toEqual([0, 0]);
  });
});

describe("a leader that cannot read the tables", () => {
  const db$ = databaseProxy();

  it("gives the lease to an instance that can, and a rule change with a notice reaches every instance within two leases", async () => {
    const leaseMs = 2_000;
    const env = fleetEnv({ TORT_LEASE_MS: String(leaseMs), TORT_LEADER_WAIT_MS: "60000" });
    // The first instance reads through a proxy, leads and serves; two more read the tables directly.
    const first = await launch({ ...env, DATABASE_URL: db$.url() });
    await eventually(async () => (await statusOf(first))?.fleet.role === "leader" && versionOf(await statusOf(first)) !== null, "the first instance leading and serving", 60_000, 50).catch((err: unknown) => {
      console.log(first.svc.log());
      throw err;
    });
    const others = [await launch(env), await launch(env)];
    const before = (await eventually(allServe([first, ...others]), "three instances on one version", 60_000, 50))!;

    // Its database connection is cut; a rule is edited and a notice sent.
    await db$.proxy.down();
    await db.database.pool.query("UPDATE video_tort_rule SET priority = priority + 3 WHERE id = (SELECT id FROM (SELECT MIN(id) AS id FROM video_tort_rule WHERE state = 1 AND is_deleted = 0) AS r)");
    const noticed = performance.now();
    nc.publish(env.TORT_RULES_CHANGED_SUBJECT!);
    const after = (await eventually(async () => {
      const v = await allServe([first, ...others])();
      return v !== null && v !== before ? v : null;
    }, "every instance on the changed rules", 60_000, 20).catch(async (err: unknown) => {
      console.log(JSON.stringify(await statuses([first, ...others]), null, 1).slice(0, 6000));
      for (const i of [first, ...others]) console.log(i.svc.log().split("\n").filter((l) => /lease|cannot|rule cache state|fetch|publish|refused|error/.test(l)).join("\n").slice(-3000));
      throw err;
    }))!;
    const ms = Math.round(performance.now() - noticed);
    console.log(`leader cut off from MySQL: every instance served the change ${ms} ms after the notice (lease ${leaseMs} ms)`);
    expect(after).toBe((await createRuleLoader(db.database).loadFull()).version);

    // The cut instance says it cannot read, everywhere an operator looks; an instance that can leads.
    const s1 = (await statusOf(first))!;
    expect(s1.fleet.role).toBe("follower");
    expect(metricValue(await (await fetch(`${first.url}/metrics`)).text(), "tortmatch_rule_tables_readable")).toBe(0);
    expect(first.svc.log()).toContain("the rule tables cannot be read by this instance");
    expect(first.svc.log()).toContain("fleet lease handed over");
    const listed = await runCli(["fleet", "--json"], env);
    const fleet = JSON.parse(listed.stdout) as { id: string; role: string; tablesReadable: boolean | null }[];
    expect(fleet.find((i) => i.id === s1.fleet.instanceId)?.tablesReadable).toBe(false);
    expect(fleet.filter((i) => i.role === "leader" && i.tablesReadable === true)).toHaveLength(1);

    // Back on the network, it reports it can read again (its next check: at the next notice).
    await db$.proxy.up();
    nc.publish(env.TORT_RULES_CHANGED_SUBJECT!);
    await eventually(async () => metricValue(await (await fetch(`${first.url}/metrics`)).text(), "tortmatch_rule_tables_readable") === 1, "the first instance reading again", 30_000, 50);
    expect(await stop([first, ...others])).toEqual([0, 0, 0]);
  }, 180_000);

  it("alone, it keeps the lease and its refreshes resume when the tables come back", async () => {
    const env = fleetEnv({ TORT_LEASE_MS: "2000", TORT_RETRY_BASE_MS: "200", TORT_RETRY_MAX_MS: "500" });
    const lone = await launch({ ...env, DATABASE_URL: db$.url() });
    const before = (await eventually(allServe([lone]), "the lone instance serving", 60_000, 50))!;
    await db$.proxy.down();
    await db.database.pool.query("UPDATE video_tort_rule SET priority = priority + 1 WHERE id = (SELECT id FROM (SELECT MAX(id) AS id FROM video_tort_rule WHERE state = 1 AND is_deleted = 0) AS r)");
    nc.publish(env.TORT_RULES_CHANGED_SUBJECT!);
    await eventually(async () => metricValue(await (await fetch(`${lone.url}/metrics`)).text(), "tortmatch_rule_tables_readable") === 0, "the lone instance unable to read", 30_000, 50);
    await new Promise((resolve) => setTimeout(resolve, 3 * 2_000));
    expect((await statusOf(lone))!.fleet.role).toBe("leader");
    expect(versionOf(await statusOf(lone))).toBe(before); // still serving what it has
    await db$.proxy.up();
    const after = (await eventually(async () => {
      const v = await allServe([lone])();
      return v !== null && v !== before ? v : null;
    }, "the lone instance on the changed rules once the tables are back", 60_000, 50))!;
    expect(after).toBe((await createRuleLoader(db.database).loadFull()).version);
    expect(await stop([lone])).toEqual([0]);
  }, 180_000);
});

describe("an instance that starts while nothing is announced", () => {
  it("waits a bounded time for a leader, then loads the rules itself", async () => {
    // Somebody else holds the lease and never announces: a lease written by hand, renewed by nobody, far in the future.
    const env = fleetEnv({ TORT_LEADER_WAIT_MS: "1500", TORT_LEASE_MS: "600000" });
    const { Kvm } = await import("@nats-io/kv");
    const kv = await new Kvm(nc).create(env.TORT_RULES_BUCKET!);
    await kv.put("leader", JSON.stringify({ holder: "someone-else", expiresAtMs: Date.now() + 600_000 }));
    const started = performance.now();
    const lone = await launch(env);
    const version = await eventually(allServe([lone]), "the instance ready", 60_000, 50);
    const waited = performance.now() - started;
    const s = (await statusOf(lone))!;
    expect(s.fleet).toMatchObject({ role: "follower", source: "database", current: null });
    expect(version).toBeTruthy();
    expect(lone.svc.log()).toContain('"ruleCache":"awaitingLeader"');
    console.log(`no leader: loaded itself ${Math.round(waited)} ms after start (wait 1500 ms)`);
    expect(await stop([lone])).toEqual([0]);
  });
});

describe("the fleet commands where no instance has run", () => {
  it("say so, and create nothing", async () => {
    const env: Record<string, string> = { ...uniqueNames(), DATABASE_URL: db.url };
    const versions = await runCli(["rules", "versions"], env);
    expect(versions.code).toBe(0);
    expect(versions.stdout).toContain("no rules version retained");
    expect(JSON.parse((await runCli(["rules", "versions", "--json"], env)).stdout)).toEqual([]);
    const pin = await runCli(["rules", "pin", "v1"], env);
    expect(pin.code).toBe(1);
    expect(pin.stderr).toContain("no rules version is retained");
    expect((await runCli(["rules", "unpin"], env)).code).toBe(1);
    const fleet = await runCli(["fleet"], env);
    expect(fleet.stdout).toContain("no running tortmatch instance");
    const jsm = await jetstreamManager(nc);
    const names = (await jsm.streams.names().next()).filter((n) => n.includes(env.TORT_RULES_BUCKET!) || n.includes(env.TORT_SNAPSHOT_BUCKET!));
    expect(names).toEqual([]);
  });
});
