/** The keys of KV bucket `tort_config` (spec section 6) and what they accept. Pure. */
import type { Checked } from "../match/types.js";

export type LiveConfigChange =
  | { readonly key: "concurrency"; readonly value: number }
  | { readonly key: "refresh_interval_ms"; readonly value: number };

export const LIVE_CONFIG_KEYS = ["concurrency", "refresh_interval_ms"] as const;
export type LiveConfigKey = (typeof LIVE_CONFIG_KEYS)[number];

export const isLiveConfigKey = (key: string): key is LiveConfigKey => (LIVE_CONFIG_KEYS as readonly string[]).includes(key);

/** A KV value for `key`: a decimal integer in range, surrounding spaces allowed. */
export function parseLiveConfigValue(key: LiveConfigKey, text: string): Checked<LiveConfigChange> {
  const trimmed = text.trim();
  const n = /^[0-9]{1,10}$/.test(trimmed) ? Number(trimmed) : Number.NaN;
  const shown = JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}…` : text);
  if (key === "concurrency") {
    return n >= 1 && n <= 4096
      ? { ok: true, value: { key, value: n } }
      : { ok: false, reason: `concurrency ${shown} is not an integer in 1..4096` };
  }
  return n === 0 || (n >= 1000 && n <= 86_400_000)
    ? { ok: true, value: { key, value: n } }
    : { ok: false, reason: `refresh_interval_ms ${shown} is not 0 (off) or an integer in 1000..86400000` };
}
