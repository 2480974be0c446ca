/** Run a benchmark child process and parse the JSON line it prints last. */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

export function runChild<T>(script: string, args: string[], env: Record<string, string> = {}): Promise<T> {
  const path = fileURLToPath(new URL(script, import.meta.url));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", path, ...args], { env: { ...process.env, LOG_LEVEL: "warn", ...env }, stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.on("error", reject);
    child.on("exit", (code) => {
      const last = out.trim().split("\n").pop() ?? "";
      if (code !== 0) reject(new Error(`${script} exited ${code}: ${out}`));
      else resolve(JSON.parse(last) as T);
    });
  });
}
