/**
 * Least privilege on NATS (spec section 12), on a private nats-server that includes
 * deploy/nats/tortmatch-permissions.conf exactly as shipped: the service does its whole job with
 * the service role alone (no permission violation logged), a producer can publish results and
 * nothing else (not the rule buckets, the snapshots, the config or the verdicts), and an operator
 * can run the documented commands.
 */
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { spawn, type ChildProcess } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli, spawnService, type SpawnedService } from "../support/cli.js";
import type { TestDatabase } from "../support/database.js";
import { freePort, NATS_SERVER_BIN } from "../support/nats-server.js";
import { eventually } from "../support/nats.js";
import { resultLines, seededDatabase } from "../support/service.js";

const FRAGMENT = fileURLToPath(new URL("../../deploy/nats/tortmatch-permissions.conf", import.meta.url));
const PASSWORDS = { TORT_NATS_SERVICE_PASSWORD: "svc-pw", TORT_NATS_OPERATOR_PASSWORD: "op-pw", TORT_NATS_PRODUCER_PASSWORD: "prod-pw" };

let dir: string;
let server: ChildProcess;
let url: string;
let db: TestDatabase;
let service: SpawnedService;
let operator: NatsConnection;
let producer: NatsConnection;
const log = () => readFileSync(join(dir, "server.log"), "utf8");
const violations = (user: string) => log().split("\n").filter((l) => / (Publish|Subscription) Violation - /.test(l) && l.includes(`User "${user}"`));

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "nats-permissions-"));
  copyFileSync(FRAGMENT, join(dir, "tortmatch-permissions.conf"));
  const port = await freePort();
  url = `nats://127.0.0.1:${port}`;
  writeFileSync(join(dir, "server.conf"), `listen: 127.0.0.1:${port}\njetstream { store_dir: "${join(dir, "js")}" }\ninclude "tortmatch-permissions.conf"\n`);
  server = spawn(NATS_SERVER_BIN, ["-c", join(dir, "server.conf"), "-l", join(dir, "server.log")], { env: { ...process.env, ...PASSWORDS }, stdio: "ignore" });
  operator = (await eventually(() => connect({ servers: url, user: "tortmatch-operator", pass: PASSWORDS.TORT_NATS_OPERATOR_PASSWORD }).catch(() => null), "the private nats-server", 15_000, 100))!;
  producer = await connect({ servers: url, user: "fingerprint-producer", pass: PASSWORDS.TORT_NATS_PRODUCER_PASSWORD });
  db = await seededDatabase();
  service = spawnService({ NATS_URL: url, NATS_USER: "tortmatch", NATS_PASSWORD: PASSWORDS.TORT_NATS_SERVICE_PASSWORD, DATABASE_URL: db.url, TORT_OPS_PORT: "0", LOG_LEVEL: "info" });
  await eventually(async () => (await runCli(["fleet", "--json"], operatorEnv())).stdout.includes('"state":"ready"') || null, "the service ready", 60_000, 250);
});
afterAll(async () => {
  service?.child.kill("SIGTERM");
  await service?.exited;
  await operator?.close();
  await producer?.close();
  server?.kill("SIGTERM");
  await db?.drop();
});

const operatorEnv = () => ({ NATS_URL: url, NATS_USER: "tortmatch-operator", NATS_PASSWORD: PASSWORDS.TORT_NATS_OPERATOR_PASSWORD, DATABASE_URL: db.url });

describe("NATS permissions of the three roles", () => {
  it("the service does its whole job with the service role alone: every result gets its verdict or dead letter", async () => {
    const lines = resultLines(300, 0.05);
    const js = jetstream(producer);
    for (const line of lines) await js.publish("fingerprint.results.perm", line);
    const jsm = await jetstreamManager(operator);
    await eventually(async () => {
      const settled = (await jsm.streams.info("TORT_VERDICTS")).state.messages + (await jsm.streams.info("TORT_DEADLETTER")).state.messages;
      return settled === lines.length || null;
    }, "a verdict or dead letter for every result", 60_000, 200);
    // Its explain endpoint answers the operator (a reply to the requester's inbox).
    const reply = (await operator.request("tort.explain", lines[0]!, { timeout: 5_000 })).json<{ rulesVersion?: string; error?: string }>();
    expect(reply.rulesVersion ?? reply.error).toBeTruthy();
    expect(violations("tortmatch")).toEqual([]);
  });

  it("a producer publishes results and cannot write the rule buckets, the snapshots, the config or the verdicts", async () => {
    const js = jetstream(producer);
    for (const subject of ["$KV.tort_rules.pinned", "$KV.tort_rules.current", "$O.tort_snapshots.C.forged", "$KV.tort_config.concurrency", "tort.verdicts.block", "tort.deadletter"]) {
      await expect(js.publish(subject, "forged", { timeout: 2_000 }), subject).rejects.toThrow();
    }
    await expect(jetstreamManager(producer, { timeout: 2_000 }).then((jsm) => jsm.streams.purge("KV_tort_rules")), "purge").rejects.toThrow();
    // Nothing it tried was stored: the buckets hold only what the service and the operator wrote.
    const rules = await new Kvm(operator).open("tort_rules");
    expect(await rules.get("pinned")).toBeNull();
    expect((await rules.get("current"))!.string()).not.toContain("forged");
    const denied = violations("fingerprint-producer").join("\n");
    for (const subject of ["$KV.tort_rules.pinned", "$O.tort_snapshots.C.forged", "$KV.tort_config.concurrency", "tort.verdicts.block"]) expect(denied).toContain(subject);
  });

  it("an operator runs the documented commands", async () => {
    const env = operatorEnv();
    const ok = async (args: string[]) => {
      const run = await runCli(args, env);
      expect(run.code, `${args.join(" ")}: ${run.stderr}`).toBe(0);
      return run.stdout;
    };
    await ok(["config", "set", "concurrency", "32"]);
    expect(await ok(["config", "get"])).toContain("32");
    await ok(["config", "unset", "concurrency"]);
    const versions = JSON.parse(await ok(["rules", "versions", "--json"])) as { version: string }[];
    expect(versions.length).toBeGreaterThan(0);
    await ok(["rules", "pin", versions[0]!.version]);
    await ok(["rules", "unpin"]);
    await ok(["rules", "refresh"]);
    expect(JSON.parse(await ok(["fleet", "--json"]))).toHaveLength(1);
    expect(violations("tortmatch-operator")).toEqual([]);
    expect(violations("tortmatch")).toEqual([]);
  });
});
