/** The alert rules shipped in deploy/prometheus: valid for Prometheus, and each one unit-tested with promtool. */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const dir = fileURLToPath(new URL("../../deploy/prometheus/", import.meta.url));
const promtool = (...args: string[]) => {
  try {
    return { code: 0, out: execFileSync("promtool", args, { cwd: dir, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }) };
  } catch (err) {
    const e = err as { status: number; stdout: string; stderr: string };
    return { code: e.status, out: `${e.stdout}${e.stderr}` };
  }
};

const alertNames = [...readFileSync(`${dir}tortmatch.rules.yml`, "utf8").matchAll(/^\s+- alert: (\w+)$/gm)].map((m) => m[1]!);
const tests = readFileSync(`${dir}tortmatch.rules.test.yml`, "utf8");

describe("alert rules", () => {
  it("pass promtool check rules", () => {
    const run = promtool("check", "rules", "tortmatch.rules.yml");
    expect(run.code, run.out).toBe(0);
    expect(run.out).toContain(`SUCCESS: ${alertNames.length} rules found`);
  });

  it("every alert has a unit test that fires it and one that keeps it quiet", () => {
    expect(alertNames.length).toBeGreaterThanOrEqual(6);
    for (const name of alertNames) {
      const cases = [...tests.matchAll(new RegExp(`alertname: ${name}\\n\\s+exp_alerts:(.*)`, "g"))].map((m) => m[1]!.trim());
      expect(cases, name).toContain("[]"); // quiet
      expect(cases.some((c) => c === ""), name).toBe(true); // firing (a list follows)
    }
  });

  it("pass promtool test rules", () => {
    const run = promtool("test", "rules", "tortmatch.rules.test.yml");
    expect(run.code, run.out).toBe(0);
    expect(run.out).toContain("SUCCESS");
  });
});
