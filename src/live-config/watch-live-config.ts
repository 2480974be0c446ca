/**
 * Watch KV bucket `tort_config`: each valid new value is handed on at once; an
 * invalid one is logged and ignored (the previous value stays); a deleted key
 * falls back to the configured default.
 */
import type { KV } from "@nats-io/kv";
import type { Logger } from "pino";
import { isLiveConfigKey, parseLiveConfigValue, type LiveConfigChange, type LiveConfigKey } from "./parse-live-config.js";

export function watchLiveConfig(
  kv: KV,
  defaults: Readonly<Record<LiveConfigKey, number>>,
  onChange: (change: LiveConfigChange) => void,
  log: Logger,
): { stop(): void } {
  let stopped = false;
  let iterator: { stop(): void } | undefined;
  const decoder = new TextDecoder();
  /** Pause before watching again after the watch ended (a NATS restart, the bucket recreated). */
  const REWATCH_MS = 1_000;
  const watchOnce = async () => {
    try {
      const watch = await kv.watch();
      iterator = watch;
      if (stopped) watch.stop();
      for await (const entry of watch) {
        if (!isLiveConfigKey(entry.key)) continue;
        if (entry.operation !== "PUT") {
          log.info({ key: entry.key, default: defaults[entry.key] }, "live config key removed; back to the default");
          onChange({ key: entry.key, value: defaults[entry.key] } as LiveConfigChange);
          continue;
        }
        const checked = parseLiveConfigValue(entry.key, decoder.decode(entry.value));
        if (checked.ok) {
          log.info({ key: entry.key, value: checked.value.value, revision: entry.revision }, "live config applied");
          onChange(checked.value);
        } else {
          log.warn({ key: entry.key, revision: entry.revision, reason: checked.reason }, "live config value ignored; the previous value stays");
        }
      }
    } catch (err) {
      if (!stopped) log.warn({ err: (err as Error).message }, "live config watch failed");
    }
  };
  void (async () => {
    // Each (re)watch delivers the current values again: applying them twice is harmless.
    while (!stopped) {
      await watchOnce();
      if (!stopped) {
        log.warn("live config watch ended; watching again");
        await new Promise((r) => setTimeout(r, REWATCH_MS));
      }
    }
  })();
  return {
    stop() {
      stopped = true;
      iterator?.stop();
    },
  };
}
