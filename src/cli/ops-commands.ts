/** Small operator commands: live config in KV, and the rule-change notice. */
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { loadConfig } from "../config.js";
import { connectNats } from "../ingest/nats-connection.js";
import { isLiveConfigKey, LIVE_CONFIG_KEYS, parseLiveConfigValue } from "../live-config/parse-live-config.js";

async function withNats<T>(fn: (nc: NatsConnection, config: ReturnType<typeof loadConfig>) => Promise<T>): Promise<T> {
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
    const kv = await new Kvm(nc).create(config.TORT_CONFIG_BUCKET);
    const revision = await kv.put(key, String(checked.value.value));
    process.stdout.write(`${config.TORT_CONFIG_BUCKET}.${key} = ${checked.value.value} (revision ${revision})\n`);
  });

/** `tortmatch config get`: the keys as stored (unset keys use the environment's defaults). */
export const configGet = () =>
  withNats(async (nc, config) => {
    const kv = await new Kvm(nc).create(config.TORT_CONFIG_BUCKET);
    for (const key of LIVE_CONFIG_KEYS) {
      const entry = await kv.get(key);
      process.stdout.write(`${key} = ${entry && entry.operation === "PUT" ? entry.string() : "(unset: environment default)"}\n`);
    }
  });

/** `tortmatch rules refresh`: publish the change notice; every running instance refreshes now. */
export const notifyRulesChanged = () =>
  withNats(async (nc, config) => {
    nc.publish(config.TORT_RULES_CHANGED_SUBJECT);
    await nc.flush();
    process.stdout.write(`notice published on ${config.TORT_RULES_CHANGED_SUBJECT}\n`);
  });
