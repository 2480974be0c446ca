/** The keys of KV bucket `tort_config` (spec sections 6 and 13) and what they accept. Pure. */
import type { Checked } from "../match/types.js";

/** `concurrency`: a fixed limit, or `auto` (spec section 13: the instance finds its own). */
export type ConcurrencySetting = number | "auto";

export type LiveConfigChange =
  | { readonly key: "concurrency"; readonly value: ConcurrencySetting }
  | { readonly key: "concurrency_min"; readonly value: number }
  | { readonly key: "concurrency_max"; readonly value: number }
  | { readonly key: "refresh_interval_ms"; readonly value: number };

export const LIVE_CONFIG_KEYS = ["concurrency", "concurrency_min", "concurrency_max", "refresh_interval_ms"] as const;
export type LiveConfigKey = (typeof LIVE_CONFIG_KEYS)[number];
export type LiveConfigValues = { readonly [K in LiveConfigKey]: Extract<LiveConfigChange, { key: K }>["value"] };

export const isLiveConfigKey = (key: string): key is LiveConfigKey => (LIVE_CONFIG_KEYS as readonly string[]).includes(key);

/** What each key accepts, as said in errors and `config set --help`. */
export const LIVE_CONFIG_ACCEPTS: Readonly<Record<LiveConfigKey, string>> = {
  concurrency: "`auto` or an integer in 1..4096",
  concurrency_min: "an integer in 1..4096 (with `auto`: the lowest limit)",
  concurrency_max: "an integer in 1..4096 (with `auto`: the highest limit)",
  refresh_interval_ms: "0 (off) or an integer in 1000..86400000",
};

const inRange = (n: number, lo: number, hi: number) => n >= lo && n <= hi;

/** A KV value for `key`: a decimal integer in range (or `auto` for `concurrency`), surrounding spaces allowed. */
export function parseLiveConfigValue(key: LiveConfigKey, text: string): Checked<LiveConfigChange> {
  const trimmed = text.trim();
  const n = /^[0-9]{1,10}$/.test(trimmed) ? Number(trimmed) : Number.NaN;
  const shown = JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}…` : text);
  const refused: Checked<LiveConfigChange> = { ok: false, reason: `${key} ${shown} is not ${LIVE_CONFIG_ACCEPTS[key].replaceAll("`", "")}` };
  switch (key) {
    case "concurrency":
      if (trimmed === "auto") return { ok: true, value: { key, value: "auto" } };
      return inRange(n, 1, 4096) ? { ok: true, value: { key, value: n } } : refused;
    case "concurrency_min":
    case "concurrency_max":
      return inRange(n, 1, 4096) ? { ok: true, value: { key, value: n } } : refused;
    case "refresh_interval_ms":
      return n === 0 || inRange(n, 1000, 86_400_000) ? { ok: true, value: { key, value: n } } : refused;
  }
}
