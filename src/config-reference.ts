/**
 * The configuration reference (docs/configuration.md), made from the settings' schema in
 * config.ts: every variable with its flag, what it accepts, its default and its meaning.
 * `npm run docs:config` writes it; test/config-reference.test.ts fails when the file differs.
 */
import { z } from "zod";
import { CONFIG_GROUPS, DEPLOYMENT_NAME_KEYS, deploymentNames, flagOf } from "./config.js";

type Field = z.ZodType;

/** The schema and the schemas it wraps (default, optional), outermost first. */
function layers(field: Field): Field[] {
  const def = field._zod.def as { type: string; innerType?: Field };
  return (def.type === "default" || def.type === "optional") && def.innerType ? [field, ...layers(def.innerType)] : [field];
}

function accepts(field: Field): string {
  const all = layers(field);
  for (const layer of all) {
    const meta = layer.meta() as { accepts?: string } | undefined;
    if (meta?.accepts) return meta.accepts;
  }
  const base = all[all.length - 1]!;
  const def = base._zod.def as { type: string; entries?: Record<string, string> };
  if (def.type === "enum" && def.entries) return Object.values(def.entries).map((v) => `\`${v}\``).join(", ");
  return "text";
}

function defaultOf(key: string, field: Field): string {
  if ((DEPLOYMENT_NAME_KEYS as readonly string[]).includes(key)) {
    return `\`${deploymentNames("default")[key as (typeof DEPLOYMENT_NAME_KEYS)[number]]}\` (from \`TORT_DEPLOYMENT\`)`;
  }
  const def = field._zod.def as { type: string; defaultValue?: unknown };
  return def.type === "default" ? `\`${String(def.defaultValue)}\`` : "–";
}

/** Markdown table cells may not hold a bare `|`. */
const cell = (text: string) => text.replaceAll("|", "\\|");

export function configurationReference(): string {
  const out = [
    "# Configuration",
    "",
    "<!-- Generated from the settings' schema in src/config.ts by `npm run docs:config`; do not edit by hand. -->",
    "",
    "tortmatch reads its settings once, at start, from the environment; every variable is also a flag",
    "(`TORT_CONCURRENCY` → `--concurrency`, `DATABASE_URL` → `--database-url`), and a flag beats the",
    "environment. A bad value stops the process with the variable's name, its flag and what it accepts,",
    "never echoing the value. Integers are decimal digits only (a blank value, `0x40` or `1e3` is refused).",
    "A variable that looks like a setting and is not one (`TORT_CONCURENCY`, `DATABSE_URL`) is named in a",
    "warning at start. Four keys can also be changed live, without a restart, in the KV bucket",
    "`TORT_CONFIG_BUCKET`: `concurrency` (a number or `auto`), `concurrency_min`, `concurrency_max` and `refresh_interval_ms` (`tortmatch config set|get|unset`).",
    "",
  ];
  for (const [group, fields] of Object.entries(CONFIG_GROUPS)) {
    out.push(`## ${group}`, "", "| variable | flag | accepts | default | meaning |", "|---|---|---|---|---|");
    for (const [key, field] of Object.entries(fields) as [string, Field][]) {
      out.push(`| \`${key}\` | \`${flagOf(key)}\` | ${cell(accepts(field))} | ${cell(defaultOf(key, field))} | ${cell(field.description ?? "")} |`);
    }
    out.push("");
  }
  return out.join("\n");
}
