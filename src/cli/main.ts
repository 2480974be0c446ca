/**
 * `tortmatch`: the command line of spec section 7. Each command is a small
 * composition root; this file only parses arguments and maps failures to exit codes.
 */
import { Command, InvalidArgumentError, Option } from "commander";
import { CONFIG_KEYS, ConfigError, flagOf, loadConfig, unknownSettings, type Config } from "../config.js";

/** Every configuration variable as a flag too (--concurrency for TORT_CONCURRENCY); a flag beats the environment. */
function withConfigFlags(command: Command): Command {
  for (const key of CONFIG_KEYS) command.addOption(new Option(`${flagOf(key)} <value>`, `overrides ${key}`).hideHelp());
  return command.addHelpText("after", "\nEvery environment variable of the README's table is also a flag: TORT_CONCURRENCY → --concurrency, DATABASE_URL → --database-url.");
}

/** The configuration: the environment, with the command's flags on top. */
export function configFrom(opts: Record<string, unknown>): Config {
  const env: Record<string, string | undefined> = { ...process.env };
  for (const key of CONFIG_KEYS) {
    const attr = flagOf(key).slice(2).replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    if (typeof opts[attr] === "string") env[key] = opts[attr] as string;
  }
  // A misspelled setting is ignored: say so, once, before anything runs (names only, never values).
  for (const warning of unknownSettings(process.env)) process.stderr.write(`tortmatch: warning: ${warning}\n`);
  return loadConfig(env);
}

function positiveInt(name: string) {
  return (value: string) => {
    const n = Number(value);
    if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError(`${name} must be a non-negative integer`);
    return n;
  };
}

/** The seeded dataset's shape, shared by `seed` and `demo`: 5,000 rules and 180,000 properties by default. */
function withDatasetOptions(command: Command): Command {
  return command
    .option("--rules <n>", "rule rows", positiveInt("--rules"), 5_000)
    .option("--properties <n>", "property rows", positiveInt("--properties"), 180_000)
    .option("--seed <n>", "random seed", positiveInt("--seed"), 42);
}

const program = new Command()
  .name("tortmatch")
  .description("Match fingerprint recognition results against copyright-infringement rules.")
  .showHelpAfterError();

withConfigFlags(
  program
    .command("run")
    .description("the live service: consume recognition results, publish verdicts, until SIGTERM/SIGINT")
    .option("--inspect [port]", "attach the Stately inspector; its bridge listens on 127.0.0.1 (default port: TORT_INSPECT_PORT, 8080)"),
).action(async (opts: Record<string, unknown> & { inspect?: string | boolean }) => {
  const config = configFrom(opts);
  const { runCommand } = await import("./run-command.js");
  await runCommand(config, opts);
});

withDatasetOptions(
  program
    .command("demo")
    .description("the live service on seeded data: a burst published before the cache is ready, drained, summarised")
    .option("--results <n>", "results in the burst", positiveInt("--results"), 20_000),
).action(async (opts) => {
    const { demoCommand } = await import("./demo-command.js");
    await demoCommand(opts);
  });

const configCommand = program.command("config").description("live configuration in the KV bucket (tort_config)");
configCommand
  .command("set <key> <value>")
  .description("set concurrency (1..4096, or auto: each instance finds its own limit), concurrency_min and concurrency_max (1..4096, the bounds of auto) or refresh_interval_ms (0 or 1000..86400000); running instances apply it at once")
  .action(async (key: string, value: string) => {
    const { configSet } = await import("./ops-commands.js");
    await configSet(key, value);
  });
configCommand
  .command("unset <key>")
  .description("delete a key: running instances go back to the environment's value")
  .action(async (key: string) => {
    const { configUnset } = await import("./ops-commands.js");
    await configUnset(key);
  });
configCommand
  .command("get")
  .description("show the live configuration keys")
  .action(async () => {
    const { configGet } = await import("./ops-commands.js");
    await configGet();
  });

const rulesCommand = program.command("rules").description("rule cache operations, and the fleet's rules versions");
rulesCommand
  .command("refresh")
  .description("publish the rule-change notice: every running instance refreshes its snapshot now (in a fleet, the leader reads and the others fetch)")
  .option("--full", "read both rule tables whole (not only the rows changed since the last load)")
  .action(async (opts: { full?: boolean }) => {
    const { notifyRulesChanged } = await import("./ops-commands.js");
    await notifyRulesChanged(opts);
  });
rulesCommand
  .command("versions")
  .description("the rules versions retained in the snapshot bucket: version, rows, bytes, built at, built by")
  .option("--json", "a JSON array")
  .action(async (opts: { json?: boolean }) => {
    const { rulesVersions } = await import("./fleet-commands.js");
    await rulesVersions(opts);
  });
rulesCommand
  .command("pin <version>")
  .description("make every instance serve a retained rules version (a fleet-wide rollback), until unpinned")
  .action(async (version: string) => {
    const { rulesPin } = await import("./fleet-commands.js");
    await rulesPin(version);
  });
rulesCommand
  .command("unpin")
  .description("remove the pin: every instance serves the current rules version again")
  .action(async () => {
    const { rulesUnpin } = await import("./fleet-commands.js");
    await rulesUnpin();
  });

program
  .command("fleet")
  .description("the running instances on this consumer: id, role, rule-cache state, rules version, in flight, limit")
  .option("--json", "a JSON array, one object per instance")
  .action(async (opts: { json?: boolean }) => {
    const { fleet } = await import("./fleet-commands.js");
    await fleet(opts);
  });

program
  .command("publish")
  .description("publish each line of an NDJSON file as a recognition result, for a running service to match")
  .requiredOption("--in <file>", "NDJSON recognition results (one JSON object a line)")
  .action(async (opts: { in: string }) => {
    const { publishResults } = await import("./ops-commands.js");
    await publishResults(opts.in);
  });

program
  .command("verdicts")
  .description("print the verdicts in the verdict stream, oldest first (the last 20 by default); --follow keeps printing new ones")
  .option("--last <n>", "how many of the newest (0: all)", positiveInt("--last"), 20)
  .option("--follow", "keep printing new verdicts until Ctrl-C")
  .option("--json", "the verdicts as NDJSON, as published")
  .action(async (opts: { last: number; follow?: boolean; json?: boolean }) => {
    const { verdictsCommand } = await import("./verdicts-command.js");
    await verdictsCommand(opts);
  });

program
  .command("teardown")
  .description("delete what `run` created: its streams (with their messages and consumers), the config and rules buckets and the snapshot bucket")
  .option("--yes", "really delete them (without it, the command lists what exists and fails)")
  .option("--force", "delete even while instances are running on the consumer")
  .action(async (opts: { yes?: boolean; force?: boolean }) => {
    const { teardown } = await import("./ops-commands.js");
    await teardown(opts);
  });

withConfigFlags(
  program
    .command("replay")
    .description("match an NDJSON file of recognition results against the current rules; write verdicts as NDJSON")
    .requiredOption("--in <file>", "NDJSON recognition results")
    .option("--out <file>", "where to write verdicts (default: stdout)"),
).action(async (opts: Record<string, unknown> & { in: string; out?: string }) => {
  const { replayCommand } = await import("./replay-command.js");
  await replayCommand(configFrom(opts), opts);
});

withConfigFlags(
  program
    .command("whatif")
    .description("match the inputs retained in the input stream against candidate rules; compare with the recorded verdicts")
    .option("--since <duration>", "only inputs stored in the last DURATION (90s, 15m, 2h, 7d)")
    .option("--from-seq <n>", "only inputs from this input-stream sequence on")
    .option("--rules-database <url>", "the candidate rules (default: DATABASE_URL)")
    .option("--out <file>", "one NDJSON line per changed input: source, before, after")
    .option("--baseline <kind>", "compare with the verdicts recorded for the inputs (recorded), or with the rules live in DATABASE_URL now, both computed (live)", "recorded")
    .option("--json", "print the summary as one JSON object, the last line of stdout"),
).action(async (opts: Record<string, unknown>) => {
  const { whatifCommand } = await import("./whatif-command.js");
  await whatifCommand(configFrom(opts), opts as never);
});

withConfigFlags(
  program
    .command("explain")
    .description("why one recognition result (JSON, from --in or stdin) hits or misses each rule naming its assets")
    .option("--in <file>", "the recognition result (default: stdin)")
    .option("--json", "one JSON object: rulesVersion, action, ruleId, and each rule's explanation")
    .option("--from-fleet", "ask a running instance (its explain endpoint), with the rules it serves, instead of reading the tables"),
).action(async (opts: Record<string, unknown> & { in?: string; json?: boolean; fromFleet?: boolean }) => {
  const { explainCommand } = await import("./explain-command.js");
  await explainCommand(configFrom(opts), opts);
});

withConfigFlags(withDatasetOptions(program
  .command("seed")
  .description("replace the rule tables with a realistic, deterministic dataset; optionally write results to replay"))
  .option("--results <n>", "recognition results to write with --results-out", positiveInt("--results"), 50_000)
  .option("--results-out <file>", "write recognition results (NDJSON, some invalid on purpose) to this file")
  .option("--no-rules-write", "only write the results file; leave the database alone")
  .option("--replace", "replace rule tables that already hold rows (the swap is atomic: an interruption leaves the old tables)"))
  .action(async (opts) => {
    const { seedCommand } = await import("./seed-command.js");
    await seedCommand(configFrom(opts), opts);
  });

const dbCommand = program.command("db").description("database administration");
dbCommand
  .command("migrate")
  .description("apply the committed migrations (safe to run twice)")
  .option("--create-database", "create the database named in DATABASE_URL first when it does not exist")
  .option("--database-url <url>", "overrides DATABASE_URL")
  .action(async (opts: { createDatabase?: boolean; databaseUrl?: string }) => {
    const { migrateCommand } = await import("./migrate-command.js");
    await migrateCommand(configFrom(opts), opts);
  });
dbCommand
  .command("check")
  .description("verify the rule tables against the contract (columns, types, indexes) without writing; for tables another team owns")
  .option("--database-url <url>", "overrides DATABASE_URL")
  .action(async (opts: { databaseUrl?: string }) => {
    const { checkCommand } = await import("./migrate-command.js");
    await checkCommand(configFrom(opts));
  });

try {
  await program.parseAsync(process.argv);
} catch (err) {
  const message = err instanceof ConfigError ? err.message : (err as Error).message ?? String(err);
  process.stderr.write(`tortmatch: ${message}\n`);
  process.exitCode = 1;
}
