/**
 * `npm run nemesis -- [--minutes N] [--seed S] [--instances K]`: the nemesis of reliability/nemesis.ts
 * for as long as asked, printing its seed first (to replay a failure) and its summary last. Exits 1
 * when the checker finds anything.
 */
import { Command } from "commander";
import { runNemesis } from "./nemesis.js";

const opts = new Command()
  .option("--minutes <n>", "how long faults are injected", "1")
  .option("--seed <n>", "the schedule's seed (random when not given)")
  .option("--instances <n>", "tortmatch instances", "3")
  .parse()
  .opts<{ minutes: string; seed?: string; instances: string }>();
const seed = opts.seed !== undefined ? Number(opts.seed) : Math.floor(Math.random() * 2 ** 31);
console.log(`nemesis: seed ${seed}, ${opts.minutes} min, ${opts.instances} instances`);
const s = await runNemesis({ seed, durationMs: Number(opts.minutes) * 60_000, instances: Number(opts.instances) });
const clean = s.lost.length === 0 && s.duplicated.length === 0 && s.strays.length === 0 && s.finalVersion !== null && s.finalMismatches === 0 && s.unexplainedVersions.length === 0;
console.log(`nemesis summary (seed ${s.seed}, ${(s.durationMs / 60_000).toFixed(1)} min): ${clean ? "CLEAN" : "FAILED"}
  inputs ${s.inputs}: verdicts ${s.verdicts}, dead letters ${s.deadLetters}; lost ${s.lost.length}, duplicated ${s.duplicated.length}, strays ${s.strays.length}
  faults: ${Object.entries(s.faults).map(([k, v]) => `${k} ${v}`).join(", ")}
  rule sets the tables held ${s.ruleSets}; versions in verdicts ${s.versions}, explained by no single rule set ${s.unexplainedVersions.length}${s.unexplainedVersions.length ? ` (${s.unexplainedVersions.join(", ")})` : ""}
  after the last quiet notice: every instance on ${s.finalVersion ?? "(no single version)"}; final batch ${s.finalInputs}, verdicts unlike the naive matcher's ${s.finalMismatches}
  instances that exited by themselves (restarted as a supervisor would): ${s.selfExits.length}${s.selfExits.map((e) => `\n    ${e}`).join("")}`);
process.exit(clean ? 0 : 1);
