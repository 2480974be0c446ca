/**
 * The only reader of process.env. Every setting is validated once at start,
 * with defaults; a bad value fails with the variable's name and what it accepts.
 * The result is frozen.
 */
import { z } from "zod";

/**
 * A decimal integer setting: digits only. A blank value, a sign, `0x40` or `1e3` is refused with
 * the variable's name, never read as 0, 64 or 1000 (a blank TORT_OPS_PORT once meant no /metrics).
 */
const int = (min: number, max: number) => {
  const accepted = `must be an integer from ${min} to ${max}`;
  return z
    .string({ error: accepted })
    .regex(/^[0-9]{1,16}$/, `${accepted} (decimal digits only)`)
    .transform(Number)
    .pipe(z.number().min(min, accepted).max(max, accepted))
    .meta({ accepts: `${min}..${max}` });
};
/** TORT_CONCURRENCY: `auto` or an integer setting. */
const concurrency = () => {
  const accepted = "must be `auto` or an integer from 1 to 4096";
  return z
    .string({ error: accepted })
    .regex(/^(auto|[0-9]{1,16})$/, `${accepted} (decimal digits only)`)
    .transform((v): number | "auto" => (v === "auto" ? "auto" : Number(v)))
    .refine((v) => v === "auto" || (v >= 1 && v <= 4096), accepted)
    .meta({ accepts: "`auto` or 1..4096" });
};
const name = () => z.string().min(1).optional();
const file = () => z.string().min(1).meta({ accepts: "a file path" }).optional();
const onOff = () => z.enum(["on", "off"]);

/*
 * Each environment variable: its type, range, default and meaning, in groups. This is the one
 * description of the settings: docs/configuration.md is generated from it (`npm run docs:config`,
 * src/config-reference.ts; a test fails when the two differ).
 */
const connections = {
  DATABASE_URL: z
    .string()
    .regex(/^mysql:\/\//, "must be a mysql://user:password@host:port/database URL")
    .meta({ accepts: "`mysql://user:password@host:port/database`" })
    .default("mysql://root@127.0.0.1:3306/test")
    .describe("the rule tables; the password never appears in logs or errors"),
  NATS_URL: z.string().min(1).meta({ accepts: "`nats://host:port`, comma-separated" }).default("nats://127.0.0.1:4222").describe("comma-separated for a cluster"),
  NATS_USER: name().describe("NATS user (with `NATS_PASSWORD`)"),
  NATS_PASSWORD: name().describe("NATS password (with `NATS_USER`)"),
  NATS_TOKEN: name().describe("NATS token"),
  NATS_CREDS_FILE: file().describe("a JWT creds file (JWT and nkey seed)"),
  NATS_TLS_CA_FILE: file().describe("TLS to NATS: a CA to trust"),
  NATS_TLS_CERT_FILE: file().describe("TLS to NATS: a client certificate for mutual TLS (with `NATS_TLS_KEY_FILE`)"),
  NATS_TLS_KEY_FILE: file().describe("TLS to NATS: the client certificate's key"),
};
const operations = {
  TORT_OPS_HOST: z.string().min(1).default("127.0.0.1").describe("the ops HTTP server's address (`/metrics`, `/healthz`, `/readyz`, the status page)"),
  TORT_OPS_PORT: int(0, 65_535).default(9464).describe("the ops HTTP server's port; 0 = off"),
  TORT_OPS_DEBUG: onOff().default("off").describe("`on` serves the ops server's debug endpoints (`/debug/heap-profile`)"),
  TORT_OPS_PAGES: z
    .enum(["auto", "on", "off"])
    .default("auto")
    .describe("the status page and its data (`/`, `/status.json`, `/events`): `auto` serves them when `TORT_OPS_HOST` is a loopback address only, so a listener opened for a remote Prometheus shows `/metrics`, `/healthz` and `/readyz` alone"),
  TORT_INSPECT_PORT: int(1, 65_535).default(8080).describe("the Stately inspector bridge with `run --inspect` (always on 127.0.0.1)"),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info").describe("JSON logs on stderr (pino)"),
  TORT_CHART_SAMPLE_MS: int(100, 60_000).default(5_000).describe("how often the status page's charts take a sample (they show the last 15 minutes)"),
  TORT_LAG_POLL_MS: int(500, 600_000).default(5_000).describe("how often the consumer's lag is read from the server (one request per instance per period)"),
  TORT_SHUTDOWN_TIMEOUT_MS: int(100, 600_000).default(20_000).describe("longest graceful shutdown before the process gives up on in-flight work"),
};
const flow = {
  TORT_CONCURRENCY: concurrency()
    .default("auto")
    .describe(
      "messages in flight between pull and ack, those a pull request has asked for and not yet received included; `auto`: the instance finds its own limit between `TORT_CONCURRENCY_MIN` and `TORT_CONCURRENCY_MAX` from the time a message takes from pull to PubAck and from its memory (spec section 13); KV `concurrency` overrides it live",
    ),
  TORT_CONCURRENCY_MIN: int(1, 4096).default(4).describe("with `auto`: the lowest limit (and the one the minimum round trip is probed at); KV `concurrency_min` overrides it live"),
  TORT_CONCURRENCY_MAX: int(1, 4096).default(1024).describe("with `auto`: the highest limit; at least `TORT_CONCURRENCY_MIN`; KV `concurrency_max` overrides it live"),
  TORT_WAIT_BUFFER: int(1, 4096).default(256).describe("most messages pulled before the first snapshot exists; the rest stay in JetStream"),
  TORT_MAX_INFLIGHT_BYTES: int(2 * 1024 * 1024, 4 * 1024 ** 3)
    .default(64 * 1024 * 1024)
    .describe("message bytes held between pull and settlement, at most (64 MiB by default): each message a pull request asks for reserves the server's `max_payload` + 64 KiB until it arrives"),
  TORT_PULL_BATCH: int(1, 4096).default(32).describe("most messages one pull request asks for (fewer when `TORT_MAX_INFLIGHT_BYTES` has less room)"),
  TORT_ACK_WAIT_MS: int(1_000, 3_600_000).default(30_000).describe("the consumer's ack wait; waiting messages are kept alive with `working()` every third of it"),
  TORT_MAX_DELIVER: int(1, 100).default(5).describe("the final delivery the service settles for good (the consumer's `max_deliver` is one more)"),
  TORT_PUBLISH_TIMEOUT_MS: int(100, 600_000).default(10_000).describe("longest wait for a verdict's or dead letter's PubAck; `TORT_ACK_WAIT_MS` must be longer"),
  TORT_MAX_ACK_PENDING: int(1, 1_000_000).default(20_000).describe("the durable consumer's `max_ack_pending`: messages delivered and not yet acked, across every instance"),
  TORT_NAK_DELAY_MS: int(0, 600_000).default(2_000).describe("redelivery delay after a failed publish"),
  TORT_DUPLICATE_WINDOW_MS: int(1_000, 86_400_000)
    .default(300_000)
    .describe("the verdict and dead-letter streams' duplicate window; at least (`TORT_MAX_DELIVER` + 1) × (`TORT_ACK_WAIT_MS` + `TORT_NAK_DELAY_MS`)"),
  TORT_STREAM_REPLICAS: int(1, 5).default(1).describe("replicas of the streams and buckets tortmatch creates (3 on a NATS cluster)"),
};
const rules = {
  TORT_REFRESH_INTERVAL_MS: int(0, 86_400_000)
    .refine((n) => n === 0 || n >= 1000, "must be 0 (off) or 1000..86400000")
    .meta({ accepts: "0 (off) or 1000..86400000" })
    .default(60_000)
    .describe("the timed rule refresh; KV `refresh_interval_ms` overrides it live"),
  TORT_FULL_RELOAD_EVERY: int(1, 10_000).default(10).describe("every Nth refresh is a full reload (catches hard deletes); the others are incremental"),
  TORT_MIN_REFRESH_GAP_MS: int(0, 3_600_000).default(1_000).describe("shortest time between the end of a load and a refresh asked for by a notice"),
  TORT_RETRY_BASE_MS: int(10, 600_000).default(500).describe("rule-load retry: the first delay (exponential, jittered between half and all of it)"),
  TORT_RETRY_MAX_MS: int(10, 3_600_000).default(30_000).describe("rule-load retry: the longest delay; at least `TORT_RETRY_BASE_MS`"),
  TORT_LOAD_PAGE_SIZE: int(100, 100_000).default(20_000).describe("rows per keyset page when loading rules"),
  TORT_SNAPSHOT_MAX_MB: int(1, 1_048_576)
    .default(512)
    .describe("the rule snapshot's memory budget, MB: a load that would pass it is abandoned while it is read"),
};
const fleet = {
  TORT_FLEET: onOff()
    .default("on")
    .describe("share the rules work with the other instances on the NATS (one database read per rules version, fleet-wide); `off`: every instance reads the tables itself"),
  TORT_LEASE_MS: int(1_000, 600_000)
    .default(15_000)
    .describe("the leader lease: renewed every third of it; a dead leader is replaced once it runs out (keep the instances' clocks within a small part of it)"),
  TORT_LEADER_WAIT_MS: int(0, 3_600_000).default(30_000).describe("how long a starting follower waits for an announced snapshot before it reads the tables itself"),
  TORT_SNAPSHOT_KEEP: int(1, 1_000).default(5).describe("rules versions kept in the snapshot bucket (the pinned and the current one are never deleted)"),
};
const names = {
  TORT_DEPLOYMENT: z
    .string()
    .regex(/^[a-z0-9][a-z0-9_-]{0,31}$/, "must be 1-32 lowercase letters, digits, _ or -, starting with a letter or digit")
    .meta({ accepts: "1–32 of `a-z0-9_-`" })
    .default("default")
    .describe("the deployment's name: every name below follows from it unless set by its own variable (`default` gives the spec's names); two deployments on one NATS need two names"),
  TORT_INPUT_STREAM: name().describe("the input stream"),
  TORT_INPUT_SUBJECTS: name().describe("the input stream's subjects"),
  TORT_CONSUMER: name().describe("the durable pull consumer every instance shares"),
  TORT_VERDICT_STREAM: name().describe("the verdict stream"),
  TORT_VERDICT_SUBJECT_PREFIX: name().describe("verdicts are published on `<prefix>.<action>`"),
  TORT_DEADLETTER_STREAM: name().describe("the dead-letter stream"),
  TORT_DEADLETTER_SUBJECT: name().describe("the dead letters' subject"),
  TORT_RULES_CHANGED_SUBJECT: name().describe("the rule-change notice's subject"),
  TORT_EXPLAIN_SUBJECT: name().describe("request-reply subject on which running instances explain a result with the snapshot they serve"),
  TORT_CONFIG_BUCKET: name().describe("KV bucket of the live configuration"),
  TORT_RULES_BUCKET: name().describe("KV bucket of the fleet: the leader lease, the announced (`current`) and the `pinned` rules version"),
  TORT_SNAPSHOT_BUCKET: name().describe("Object Store bucket of the published rule snapshots, one object per version"),
  TORT_EXHAUSTED_STREAM: name().describe("captures the server's max-deliveries advisories of the consumer: inputs whose deliveries ran out unsettled"),
  TORT_SERVICE_NAME: z
    .string()
    .regex(/^[A-Za-z0-9_-]+$/, "must be letters, digits, _ or -")
    .meta({ accepts: "letters, digits, `_`, `-`" })
    .optional()
    .describe("the NATS service every instance registers (discovery, `tortmatch fleet`, the explain endpoint)"),
};

/** The settings' groups, in the order the reference lists them. */
export const CONFIG_GROUPS = {
  "Connections": connections,
  "Operations": operations,
  "Flow and delivery": flow,
  "Rules": rules,
  "Fleet": fleet,
  "Names": names,
} as const;

const envSchema = z.object({ ...connections, ...operations, ...flow, ...rules, ...fleet, ...names });

/** The names that follow from TORT_DEPLOYMENT when not set one by one. */
export const DEPLOYMENT_NAME_KEYS = [
  "TORT_INPUT_STREAM",
  "TORT_INPUT_SUBJECTS",
  "TORT_CONSUMER",
  "TORT_VERDICT_STREAM",
  "TORT_VERDICT_SUBJECT_PREFIX",
  "TORT_DEADLETTER_STREAM",
  "TORT_DEADLETTER_SUBJECT",
  "TORT_RULES_CHANGED_SUBJECT",
  "TORT_EXPLAIN_SUBJECT",
  "TORT_CONFIG_BUCKET",
  "TORT_RULES_BUCKET",
  "TORT_SNAPSHOT_BUCKET",
  "TORT_EXHAUSTED_STREAM",
  "TORT_SERVICE_NAME",
] as const;
type DeploymentNameKey = (typeof DEPLOYMENT_NAME_KEYS)[number];

/**
 * Every name of a deployment: the spec's names for `default`; for another name, the same names
 * carrying it (`eu1`: stream FINGERPRINT_RESULTS_EU1 on fingerprint.eu1.results.>, consumer
 * tortmatch_eu1, subjects tort.eu1.verdicts.<action>, tort.eu1.rules.changed, buckets
 * tort_config_eu1, tort_rules_eu1, tort_snapshots_eu1, service tortmatch-eu1).
 */
export function deploymentNames(deployment: string): Record<DeploymentNameKey, string> {
  if (deployment === "default") {
    return {
      TORT_INPUT_STREAM: "FINGERPRINT_RESULTS",
      TORT_INPUT_SUBJECTS: "fingerprint.results.>",
      TORT_CONSUMER: "tortmatch",
      TORT_VERDICT_STREAM: "TORT_VERDICTS",
      TORT_VERDICT_SUBJECT_PREFIX: "tort.verdicts",
      TORT_DEADLETTER_STREAM: "TORT_DEADLETTER",
      TORT_DEADLETTER_SUBJECT: "tort.deadletter",
      TORT_RULES_CHANGED_SUBJECT: "tort.rules.changed",
      TORT_EXPLAIN_SUBJECT: "tort.explain",
      TORT_CONFIG_BUCKET: "tort_config",
      TORT_RULES_BUCKET: "tort_rules",
      TORT_SNAPSHOT_BUCKET: "tort_snapshots",
      TORT_EXHAUSTED_STREAM: "TORT_EXHAUSTED",
      TORT_SERVICE_NAME: "tortmatch",
    };
  }
  const d = deployment;
  const D = d.toUpperCase().replaceAll("-", "_");
  return {
    TORT_INPUT_STREAM: `FINGERPRINT_RESULTS_${D}`,
    TORT_INPUT_SUBJECTS: `fingerprint.${d}.results.>`,
    TORT_CONSUMER: `tortmatch_${d}`,
    TORT_VERDICT_STREAM: `TORT_VERDICTS_${D}`,
    TORT_VERDICT_SUBJECT_PREFIX: `tort.${d}.verdicts`,
    TORT_DEADLETTER_STREAM: `TORT_DEADLETTER_${D}`,
    TORT_DEADLETTER_SUBJECT: `tort.${d}.deadletter`,
    TORT_RULES_CHANGED_SUBJECT: `tort.${d}.rules.changed`,
    TORT_EXPLAIN_SUBJECT: `tort.${d}.explain`,
    TORT_CONFIG_BUCKET: `tort_config_${d}`,
    TORT_RULES_BUCKET: `tort_rules_${d}`,
    TORT_SNAPSHOT_BUCKET: `tort_snapshots_${d}`,
    TORT_EXHAUSTED_STREAM: `TORT_EXHAUSTED_${D}`,
    TORT_SERVICE_NAME: `tortmatch-${d}`,
  };
}

export type Config = Readonly<Omit<z.infer<typeof envSchema>, DeploymentNameKey> & Record<DeploymentNameKey, string>>;

/** Every configuration variable's name (the README's table lists them all). */
export const CONFIG_KEYS = Object.keys(envSchema.shape) as (keyof Config)[];

/** The command-line flag of a variable: TORT_CONCURRENCY → --concurrency, DATABASE_URL → --database-url. */
export const flagOf = (key: string) => `--${key.replace(/^TORT_/, "").toLowerCase().replaceAll("_", "-")}`;

const SECRET_KEYS = new Set(["NATS_PASSWORD", "NATS_TOKEN"]);

/**
 * A URL with its password replaced by ***, and a lone user name (a NATS token)
 * too. Parsed as a URL, never matched by a pattern: a password may hold `@`,
 * `:` or `/`, and a user name may be empty. A URL that does not parse but
 * holds an `@` is not shown at all.
 */
export function redactUrl(url: string): string {
  const text = url.trim();
  const hasScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text);
  let u: URL;
  try {
    u = new URL(hasScheme ? text : `nats://${text}`);
  } catch {
    return text.includes("@") ? "(an unparseable URL with credentials)" : text;
  }
  if (u.username === "" && u.password === "") return text;
  // A lone user name is a token for NATS; for MySQL it is just the user.
  const loneUserIsSecret = !/^mysql/i.test(u.protocol);
  if (u.password === "" && !loneUserIsSecret) return text;
  const auth = u.password !== "" ? `${u.username}:***` : "***";
  const scheme = hasScheme ? `${u.protocol}//` : "";
  return `${scheme}${auth}@${u.host}${u.pathname}${u.search}${u.hash}`;
}

/** The configuration as it may be shown in logs and on the status page: secrets replaced by ***. */
export function redactConfig(config: Config): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(config).map(([k, v]) => [
      k,
      SECRET_KEYS.has(k) && v !== undefined ? "***" : typeof v === "string" && v.includes("://") ? v.split(",").map(redactUrl).join(",") : v,
    ]),
  );
}

/** A configuration value that is missing its shape; names the variable. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

/** Names read from the environment that are not settings: the shell's own, and the tools around it. */
const SETTING_NAME = /^(TORT_|DATABASE_|NATS_)/;

/** Edit distance of two short names (insertions, deletions, substitutions). */
function distance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) next[j] = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    row = next;
  }
  return row[b.length]!;
}

/**
 * Warnings for names in the environment that look like settings and are not: every unknown
 * `TORT_*`, `NATS_*` or `DATABASE_*` variable, and any variable within two edits of a setting's
 * name (`DATABSE_URL`), each with the setting it was probably meant to be. Names only, never values.
 */
export function unknownSettings(env: Record<string, string | undefined>): string[] {
  const known = new Set<string>(CONFIG_KEYS);
  const warnings: string[] = [];
  for (const name of Object.keys(env)) {
    if (known.has(name) || env[name] === undefined) continue;
    const near = CONFIG_KEYS.map((key) => ({ key, d: distance(name, key) })).sort((a, b) => a.d - b.d)[0]!;
    const close = near.d <= Math.max(1, Math.min(2, Math.floor(near.key.length / 6)));
    if (close) warnings.push(`${name} is not a setting; did you mean ${near.key}? (it is ignored)`);
    else if (SETTING_NAME.test(name)) warnings.push(`${name} is not a setting tortmatch knows (it is ignored)`);
  }
  return warnings;
}

/** Read and validate the configuration from an environment (process.env by default). */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    // Name the variable and its flag; never echo a value (it may be a secret).
    const lines = parsed.error.issues.map((i) => `${String(i.path[0])} (${flagOf(String(i.path[0]))}): ${i.message}`);
    throw new ConfigError(`invalid configuration:\n  ${lines.join("\n  ")}`);
  }
  const names = deploymentNames(parsed.data.TORT_DEPLOYMENT);
  const config = { ...parsed.data } as { -readonly [K in keyof Config]: Config[K] };
  for (const key of DEPLOYMENT_NAME_KEYS) config[key] = parsed.data[key] ?? names[key];
  // The consumer delivers up to TORT_MAX_DELIVER + 1 times (the last one is for settling).
  const needed = (config.TORT_MAX_DELIVER + 1) * (config.TORT_ACK_WAIT_MS + config.TORT_NAK_DELAY_MS);
  if (config.TORT_DUPLICATE_WINDOW_MS < needed) {
    throw new ConfigError(
      `invalid configuration:\n  TORT_DUPLICATE_WINDOW_MS (--duplicate-window-ms): must be at least (TORT_MAX_DELIVER + 1) × (TORT_ACK_WAIT_MS + TORT_NAK_DELAY_MS) = ${needed}`,
    );
  }
  if (config.TORT_ACK_WAIT_MS <= config.TORT_PUBLISH_TIMEOUT_MS) {
    throw new ConfigError(
      "invalid configuration:\n  TORT_ACK_WAIT_MS (--ack-wait-ms): must be longer than TORT_PUBLISH_TIMEOUT_MS (--publish-timeout-ms), else a message can be redelivered while its verdict is still being published",
    );
  }
  if (config.NATS_USER !== undefined && config.NATS_PASSWORD === undefined) {
    throw new ConfigError("invalid configuration:\n  NATS_PASSWORD (--nats-password): required with NATS_USER");
  }
  if ((config.NATS_TLS_CERT_FILE === undefined) !== (config.NATS_TLS_KEY_FILE === undefined)) {
    throw new ConfigError("invalid configuration:\n  NATS_TLS_CERT_FILE and NATS_TLS_KEY_FILE: give both or neither");
  }
  if (config.TORT_CONCURRENCY_MAX < config.TORT_CONCURRENCY_MIN) {
    throw new ConfigError("invalid configuration:\n  TORT_CONCURRENCY_MAX (--concurrency-max): must be at least TORT_CONCURRENCY_MIN");
  }
  if (config.TORT_RETRY_MAX_MS < config.TORT_RETRY_BASE_MS) {
    throw new ConfigError("invalid configuration:\n  TORT_RETRY_MAX_MS: must be at least TORT_RETRY_BASE_MS");
  }
  return Object.freeze(config);
}
