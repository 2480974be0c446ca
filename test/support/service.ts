/** A seeded rule database and an in-process service over real NATS and MySQL. */
import type { NatsConnection } from "@nats-io/transport-node";
import { Writable } from "node:stream";
import { afterAll, beforeAll } from "vitest";
import type { Config } from "../../src/config.js";
import { decodeResultText } from "../../src/ingest/decode-result.js";
import { matchResult } from "../../src/match/match-result.js";
import type { RuleSnapshot } from "../../src/match/snapshot.js";
import type { Decision } from "../../src/match/types.js";
import { createLogger } from "../../src/ops/logger.js";
import { replayResults } from "../../src/replay/replay-results.js";
import { openRuleDatabase } from "../../src/rules/database.js";
import { startService, type RunningService, type ServiceDeps } from "../../src/service.js";
import { generateProperties, generateResultLines, generateRules } from "../../src/seed/generate-dataset.js";
import { writeRules } from "../../src/seed/write-rules.js";
import { createTestDatabase, type TestDatabase } from "./database.js";
import { connectTest, removeTopology, testConfig, uniqueNames } from "./nats.js";

export const SMALL_DATASET = { rules: 400, properties: 8_000, seed: 11 };

export async function seededDatabase(dataset = SMALL_DATASET): Promise<TestDatabase> {
  const t = await createTestDatabase();
  await writeRules(t.database, generateRules(dataset), generateProperties(dataset));
  return t;
}

export const resultLines = (results: number, invalidShare = 0, dataset = SMALL_DATASET) => [...generateResultLines({ ...dataset, results, invalidShare })];

/** Start the service in this process with its own pool to `databaseUrl`, closed here once the service has stopped (or failed to start). */
export async function startTestService(config: Config, nc: NatsConnection, extra: Partial<ServiceDeps> = {}): Promise<RunningService> {
  const database = openRuleDatabase({ url: config.DATABASE_URL, connectTimeoutMs: 2_000 });
  try {
    const service = await startService({ config, log: createLogger(process.env.TEST_LOG_LEVEL ?? "silent"), nc, database, pullExpiresMs: 1_000, ...extra });
    void service.stopped.finally(() => database.close());
    return service;
  } catch (err) {
    await database.close();
    throw err;
  }
}

/** What the matcher says for a line, against a snapshot: the reference the service must agree with. */
export function expectedDecision(snapshot: RuleSnapshot, line: string): Decision | "invalid" {
  const r = decodeResultText(line);
  return r.ok ? matchResult(snapshot, r.value) : "invalid";
}

/** What a test file that runs the service as processes needs: a seeded database, NATS, names of its own. */
export interface ServiceStack {
  db: TestDatabase;
  nc: NatsConnection;
  /** Environment for `spawnService`: unique names, the database, and the file's own settings. */
  env: Record<string, string>;
  config: Config;
}

/** Made before the file's tests, removed after them (streams, bucket, connection, database). */
export function useServiceStack(settings: Record<string, string>): ServiceStack {
  const stack = {} as ServiceStack;
  beforeAll(async () => {
    stack.db = await seededDatabase();
    stack.nc = await connectTest();
    stack.env = { ...uniqueNames(), DATABASE_URL: stack.db.url, TORT_OPS_PORT: "0", ...settings };
    stack.config = testConfig(stack.db.url, stack.env);
  });
  afterAll(async () => {
    if (stack.nc) await removeTopology(stack.nc, stack.config).catch(() => {});
    await stack.nc?.drain();
    await stack.db?.drop();
  });
  return stack;
}

/** A seeded database and a NATS connection for a test file, with services started in it stopped (and their streams removed) afterwards. */
export interface ServiceHarness {
  readonly db: TestDatabase;
  readonly nc: NatsConnection;
  /** Run after the file's tests, in reverse order of registration. */
  onCleanup(fn: () => Promise<unknown>): void;
  /** An in-process service, stopped and its topology removed after the file's tests. */
  start(config: Config, extra?: Partial<ServiceDeps>): Promise<RunningService>;
}

export function useServiceHarness(dataset = SMALL_DATASET): ServiceHarness {
  let db: TestDatabase | undefined;
  let nc: NatsConnection | undefined;
  const cleanups: (() => Promise<unknown>)[] = [];
  beforeAll(async () => {
    db = await seededDatabase(dataset);
    nc = await connectTest();
  });
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => {});
    await nc?.drain();
    await db?.drop();
  });
  const harness: ServiceHarness = {
    get db() {
      return db!;
    },
    get nc() {
      return nc!;
    },
    onCleanup: (fn) => void cleanups.push(fn),
    async start(config, extra = {}) {
      const service = await startTestService(config, nc!, extra);
      cleanups.push(async () => {
        await service.stop();
        await removeTopology(nc!, config);
      });
      return service;
    },
  };
  return harness;
}

/**
 * The reference for a run's verdicts: the replay of the same lines against a snapshot (what
 * `tortmatch replay` writes), each verdict parsed, and the 1-based numbers of the invalid lines.
 */
export async function replayLines(snapshot: RuleSnapshot, lines: readonly string[]): Promise<{ replayed: Record<string, unknown>[]; invalidLines: number[] }> {
  const replayed: Record<string, unknown>[] = [];
  const invalidLines: number[] = [];
  await replayResults({
    snapshot,
    lines: (async function* () {
      yield* lines;
    })(),
    out: new Writable({ write: (chunk, _enc, done) => (replayed.push(JSON.parse(String(chunk))), done()) }),
    onInvalid: (n) => invalidLines.push(n),
  });
  return { replayed, invalidLines };
}
