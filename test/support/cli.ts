/** Run the real `tortmatch` executable as a child process. */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

export const BIN = fileURLToPath(new URL("../../bin/tortmatch.js", import.meta.url));
/** The CLI from its TypeScript sources (tests run what is in the tree, never a stale build). */
export const CLI_ARGS = ["--import", "tsx", fileURLToPath(new URL("../../src/cli/main.ts", import.meta.url))];

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runCli(args: string[], env: Record<string, string> = {}, timeoutMs = 60_000): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...CLI_ARGS, ...args], { env: { ...process.env, LOG_LEVEL: "warn", ...env } });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

export interface SpawnedService {
  readonly child: import("node:child_process").ChildProcess;
  readonly exited: Promise<number | null>;
  log(): string;
}

/** `tortmatch run` from the sources, as a process of its own (to be killed, restarted, scaled out). */
export function spawnService(env: Record<string, string>, nodeArgs: string[] = []): SpawnedService {
  const child = spawn(process.execPath, [...nodeArgs, ...CLI_ARGS, "run"], { env: { ...process.env, ...env }, stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  child.stderr!.on("data", (d) => {
    log += d;
    if (log.length > 2_000_000) log = log.slice(-1_000_000); // bounded
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code, signal) => resolve(code ?? (signal ? -1 : null))));
  return { child, exited, log: () => log };
}
