/** Small helpers shared by the benchmarks: medians, heap sampling, CPU clocks, table output. */
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";

export const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

/** Full GC, when the process was started with --expose-gc. */
export function collectGarbage(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error("run with node --expose-gc (the npm script does)");
  gc();
  gc();
}

/** V8 heap plus ArrayBuffer memory (typed arrays live outside the heap proper). */
export function heapAndBuffers(): number {
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

/** Samples heap and buffers every millisecond (and whenever `sample` is called) while `fn` runs. */
export async function withPeakHeap<T>(fn: (sample: () => void) => Promise<T>): Promise<{ value: T; peakHeapBytes: number }> {
  collectGarbage();
  const base = heapAndBuffers();
  let peak = base;
  const sample = () => {
    const used = heapAndBuffers();
    if (used > peak) peak = used;
  };
  const timer = setInterval(sample, 1);
  try {
    const value = await fn(sample);
    sample();
    return { value, peakHeapBytes: peak - base };
  } finally {
    clearInterval(timer);
  }
}

export const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;
export const ratio = (x: number, base: number) => `${(x / base).toFixed(2)}x`;

/** The benchmarks' own database (seeded by scripts/bench-data.sh), never the default one. */
export const benchDatabaseUrl = process.env.BENCH_DATABASE_URL ?? "mysql://root@127.0.0.1:3306/tortmatch_bench";

/** Clock ticks a second, for /proc's CPU times (getconf CLK_TCK; 100 on Linux where getconf is missing). */
function clockTicksPerSecond(): number {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  } catch {
    return 100;
  }
}

/** User + system CPU of a thread or process from its /proc stat file, in µs; null where it cannot be read. */
function procCpuUs(statPath: string, clockTicks: number): number | null {
  try {
    const stat = readFileSync(statPath, "utf8");
    // Fields after the command name (which may hold spaces): state is the 1st, utime the 12th, stime the 13th.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(fields[11]) + Number(fields[12])) * 1e6) / clockTicks;
  } catch {
    return null;
  }
}

/** A process's command name from /proc, "" when it is gone. */
function commOf(pid: string): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, "utf8").trim();
  } catch {
    return ""; // gone since the listing
  }
}

/** The pid of the one nats-server process on this host, or null (none, several, or no /proc). */
function localNatsServerPid(): number | null {
  try {
    const pids = readdirSync("/proc").filter((d) => /^\d+$/.test(d) && commOf(d) === "nats-server");
    return pids.length === 1 ? Number(pids[0]) : null;
  } catch {
    return null;
  }
}

/**
 * CPU clocks for a drain, in µs: this process's main thread (the event loop: where a bare loop and an
 * in-process service run; GC and compiler threads excluded) and the local nats-server, when the
 * benchmark talks to the only one on this host. Null where Linux's /proc does not give them.
 */
export function cpuClocks(natsUrl: string): { mainThread(): number | null; natsServer(): number | null } {
  const local = /^(nats:\/\/)?(127\.0\.0\.1|localhost)(:\d+)?$/.test(natsUrl);
  const serverPid = local ? localNatsServerPid() : null;
  const ticks = clockTicksPerSecond(); // asked once, by the benchmark that reads the clocks
  return {
    mainThread: () => procCpuUs(`/proc/self/task/${process.pid}/stat`, ticks),
    natsServer: () => (serverPid === null ? null : procCpuUs(`/proc/${serverPid}/stat`, ticks)),
  };
}
