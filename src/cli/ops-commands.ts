/**
 * Small operator commands: live config in KV, the rule-change notice,
 * feeding results to a running service, and removing what `run` created.
 */
import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { createReadStream } from "node:fs";
import { createInterface } from "node:readline";
import { isNotFound } from "../ingest/topology.js";
import type { NatsConnection } from "@nats-io/transport-node";
import { loadConfig } from "../config.js";
import { discoverFleet } from "../fleet/discover-fleet.js";
import { connectNats } from "../nats/connection.js";
import { isLiveConfigKey, LIVE_CONFIG_KEYS, parseLiveConfigValue } from "../live-config/parse-live-config.js";
import { openConfigBucket } from "../live-config/config-bucket.js";

export async function withNats<T>(fn: (nc: NatsConnection, config: ReturnType<typeof loadConfig>) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const nc = await connectNats(config, "tortmatch-cli"); // same authentication and TLS as the service
  try {
    return await fn(nc, config);
  } finally {
    await nc.drain();
  }
}

/** `tortmatch config set KEY VALUE`: validated here with the service's own rules, then written. */
export const configSet = (key: string, value: string) =>
  withNats(async (nc, config) => {
    if (!isLiveConfigKey(key)) throw new Error(`unknown key ${JSON.stringify(key)}: one of ${LIVE_CONFIG_KEYS.join(", ")}`);
    const checked = parseLiveConfigValue(key, value);
    if (!checked.ok) throw new Error(checked.reason);
    const kv = await openConfigBucket(nc, config.TORT_CONFIG_BUCKET, config.TORT_STREAM_REPLICAS);
    const revision = await kv.put(key, String(checked.value.value));
    process.stdout.write(`${config.TORT_CONFIG_BUCKET}.${key} = ${checked.value.value} (revision ${revision})\n`);
  });

/** A KV bucket when it exists, null when no instance or command has made it (read-only commands never create one). */
export async function openExistingKv(nc: NatsConnection, bucket: string) {
  try {
    const kv = await new Kvm(nc).open(bucket);
    await kv.status(); // open() alone does not ask the server
    return kv;
  } catch (err) {
    if (isNotFound(err) || /not found|does not exist/i.test(String((err as Error)?.message))) return null;
    throw err;
  }
}

/**
 * `tortmatch config get`: each key's value in effect. A stored value the service would refuse is
 * shown as ignored, with the reason (running instances keep the value they had). Creates nothing.
 */
export const configGet = () =>
  withNats(async (nc, config) => {
    const kv = await openExistingKv(nc, config.TORT_CONFIG_BUCKET);
    for (const key of LIVE_CONFIG_KEYS) {
      const entry = kv === null ? null : await kv.get(key);
      if (entry === null || entry.operation !== "PUT") {
        process.stdout.write(`${key} = (unset: environment default)\n`);
        continue;
      }
      const checked = parseLiveConfigValue(key, entry.string());
      process.stdout.write(
        checked.ok
          ? `${key} = ${checked.value.value}\n`
          : `${key} = (INVALID, ignored: ${checked.reason}; running instances keep the value they had; \`tortmatch config set ${key} …\` or \`config unset ${key}\`)\n`,
      );
    }
  });

/** `tortmatch config unset KEY`: delete the key; running instances go back to the environment's value. */
export const configUnset = (key: string) =>
  withNats(async (nc, config) => {
    if (!isLiveConfigKey(key)) throw new Error(`unknown key ${JSON.stringify(key)}: one of ${LIVE_CONFIG_KEYS.join(", ")}`);
    const kv = await openExistingKv(nc, config.TORT_CONFIG_BUCKET);
    await kv?.delete(key);
    process.stdout.write(`${config.TORT_CONFIG_BUCKET}.${key} unset: running instances use the environment's value\n`);
  });

/** The instances registered on this deployment's consumer (service discovery; empty when none). */
const runningInstances = (nc: NatsConnection, config: ReturnType<typeof loadConfig>) =>
  discoverFleet(nc, { service: config.TORT_SERVICE_NAME, consumer: config.TORT_CONSUMER });

/**
 * `tortmatch rules refresh [--full]`: publish the change notice; every running instance refreshes now
 * (`--full`: reads both tables whole). With no instance running, it says so and fails: nothing refreshed.
 */
export const notifyRulesChanged = (options: { full?: boolean } = {}) =>
  withNats(async (nc, config) => {
    nc.publish(config.TORT_RULES_CHANGED_SUBJECT, options.full ? JSON.stringify({ full: true }) : undefined);
    await nc.flush();
    const running = await runningInstances(nc, config);
    if (running.length === 0) {
      throw new Error(`${options.full ? "full-reload " : ""}notice published on ${config.TORT_RULES_CHANGED_SUBJECT}, but no instance is running on consumer ${config.TORT_CONSUMER}: nothing refreshed (an instance reads the tables when it starts)`);
    }
    process.stdout.write(`${options.full ? "full-reload " : ""}notice published on ${config.TORT_RULES_CHANGED_SUBJECT}: ${running.length} running instance(s) refresh now\n`);
  });

/** Publishes awaiting their PubAcks at once, at most (bounds memory and the server's inflow). */
const PUBLISH_WINDOW = 256;

/**
 * `tortmatch publish --in FILE`: each non-empty line of an NDJSON file as one
 * recognition result on the input subjects (the input stream is created when
 * missing, as `run` creates it), each awaited until its PubAck. Lines are
 * sent as they are: the service dead-letters the invalid ones.
 */
export const publishResults = (file: string) =>
  withNats(async (nc, config) => {
    const jsm = await jetstreamManager(nc);
    const subjects = config.TORT_INPUT_SUBJECTS.split(",");
    try {
      await jsm.streams.info(config.TORT_INPUT_STREAM);
    } catch (err) {
      if (!isNotFound(err)) throw err;
      await jsm.streams.add({ name: config.TORT_INPUT_STREAM, subjects, num_replicas: config.TORT_STREAM_REPLICAS });
    }
    // A concrete subject under the first pattern: fingerprint.results.> → fingerprint.results.cli
    const subject = subjects[0]!.replace(/>$/, "cli").replaceAll("*", "cli");
    const js = jsm.jetstream();
    const encoder = new TextEncoder();
    let published = 0;
    let window: Promise<unknown>[] = [];
    const lines = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
    for await (const line of lines) {
      if (line.trim() === "") continue;
      window.push(js.publish(subject, encoder.encode(line)));
      published++;
      if (window.length === PUBLISH_WINDOW) {
        await Promise.all(window);
        window = [];
      }
    }
    await Promise.all(window);
    process.stdout.write(`published ${published} results to ${subject} (stream ${config.TORT_INPUT_STREAM})\n`);
  });

/** What `run` creates: its streams (the consumers go with them), the KV buckets and the snapshot bucket, with their streams. */
export function createdBy(config: ReturnType<typeof loadConfig>) {
  return {
    streams: [config.TORT_INPUT_STREAM, config.TORT_VERDICT_STREAM, config.TORT_DEADLETTER_STREAM, config.TORT_EXHAUSTED_STREAM],
    buckets: [
      { name: config.TORT_CONFIG_BUCKET, kind: "KV bucket", stream: `KV_${config.TORT_CONFIG_BUCKET}` },
      { name: config.TORT_RULES_BUCKET, kind: "KV bucket", stream: `KV_${config.TORT_RULES_BUCKET}` },
      { name: config.TORT_SNAPSHOT_BUCKET, kind: "Object Store bucket", stream: `OBJ_${config.TORT_SNAPSHOT_BUCKET}` },
    ],
  };
}

/**
 * `tortmatch teardown --yes`: delete what `run` created — the input, verdict,
 * dead-letter and exhausted-deliveries streams (with the durable consumers)
 * and the buckets. Without `--yes` it lists what exists (with message counts)
 * and fails; while instances are registered on the consumer it refuses
 * unless `--force`.
 */
export const teardown = (options: { yes?: boolean; force?: boolean }) =>
  withNats(async (nc, config) => {
    const { streams, buckets } = createdBy(config);
    const jsm = await jetstreamManager(nc);
    const existing: string[] = [];
    for (const [stream, what] of [...streams.map((s) => [s, `stream ${s}`] as const), ...buckets.map((b) => [b.stream, `${b.kind} ${b.name}`] as const)]) {
      try {
        const info = await jsm.streams.info(stream);
        existing.push(`${what} (${info.state.messages} messages)`);
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    }
    if (existing.length === 0) {
      process.stdout.write(`nothing to delete: none of ${streams.join(", ")} or the buckets exists\n`);
      return;
    }
    const running = await runningInstances(nc, config);
    if (running.length > 0 && !options.force) {
      throw new Error(`${running.length} instance(s) are running on consumer ${config.TORT_CONSUMER} (${running.map((i) => i.id).join(", ")}): stop them first, or add --force to delete from under them`);
    }
    if (!options.yes) throw new Error(`teardown deletes ${existing.join(", ")} (with every message and consumer in them); run it again with --yes to do so`);
    for (const stream of [...streams, ...buckets.map((b) => b.stream)]) {
      try {
        await jsm.streams.delete(stream);
        process.stdout.write(`deleted ${stream}\n`);
      } catch (err) {
        if (!isNotFound(err)) throw err;
        process.stdout.write(`${stream}: not there\n`);
      }
    }
  });
