/** Run a benchmark child process and parse the JSON line it prints last; `onLine` hears each line as it comes. */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

/**
 * The child runs compiled (dist/, built by the npm script) when it can: as the
 * service runs in production, without the tsx loader thread (~40 MB of RSS).
 */
export function runChild<T>(script: string, args: string[], env: Record<string, string> = {}, onLine: (line: string) => void = () => {}): Promise<T> {
  const source = fileURLToPath(new URL(script, import.meta.url));
  const compiled = import.meta.url.includes("/dist/") ? source.replace(/\.ts$/, ".js") : null;
  const argv = compiled !== null && existsSync(compiled) ? [compiled] : ["--import", "tsx", source];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...argv, ...args], { env: { ...process.env, LOG_LEVEL: "warn", ...env }, stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    let seen = 0;
    child.stdout.on("data", (d) => {
      out += d;
      const end = out.lastIndexOf("\n");
      if (end < seen) return;
      for (const line of out.slice(seen, end).split("\n")) if (line !== "") onLine(line);
      seen = end + 1;
    });
    child.on("error", reject);
    child.on("exit", (code) => {
      const last = out.trim().split("\n").pop() ?? "";
      if (code !== 0) reject(new Error(`${script} exited ${code}: ${out}`));
      else resolve(JSON.parse(last) as T);
    });
  });
}
