/** Small helpers shared by the benchmarks: medians, heap sampling, table output. */

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
