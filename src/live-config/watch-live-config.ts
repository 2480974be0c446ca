/**
 * Watch KV bucket `tort_config`: each valid new value is handed on at once; an
 * invalid one is logged and ignored (the previous value stays); a deleted key
 * falls back to the configured default.
 */
import type { KV } from "@nats-io/kv";
import type { Logger } from "pino";
import { watchKv } from "../nats/watch-kv.js";
import { isLiveConfigKey, parseLiveConfigValue, type LiveConfigChange, type LiveConfigValues } from "./parse-live-config.js";

export function watchLiveConfig(
  kv: KV,
  defaults: LiveConfigValues,
  onChange: (change: LiveConfigChange) => void,
  log: Logger,
): { stop(): void } {
  const decoder = new TextDecoder();
  return watchKv(
    kv,
    "live config",
    (entry) => {
      if (!isLiveConfigKey(entry.key)) return;
      if (entry.operation !== "PUT") {
        log.info({ key: entry.key, default: defaults[entry.key] }, "live config key removed; back to the default");
        onChange({ key: entry.key, value: defaults[entry.key] } as LiveConfigChange);
        return;
      }
      const checked = parseLiveConfigValue(entry.key, decoder.decode(entry.value));
      if (checked.ok) {
        log.info({ key: entry.key, value: checked.value.value, revision: entry.revision }, "live config applied");
        onChange(checked.value);
      } else {
        log.warn({ key: entry.key, revision: entry.revision, reason: checked.reason }, "live config value ignored; the previous value stays");
      }
    },
    log,
  );
}
