/**
 * An on-demand sampling heap profile of this process (V8's sampling heap
 * profiler through node's inspector), in the `.heapprofile` format Chrome
 * DevTools and speedscope open: what allocated the memory still held, by
 * call stack — the view that diagnoses a rule table that no longer fits.
 */
import { Session } from "node:inspector";

/** Longest profile, seconds. */
export const MAX_PROFILE_SECONDS = 60;
/**
 * Bytes between samples, on average: 8 KiB, a quarter of V8's default (32 KiB). A rule snapshot is
 * mostly typed arrays (not sampled: their memory is outside the JS heap) and a few hundred KB of
 * objects; at the default a small one could leave no sample at all. Sampling runs only while a
 * profile is asked for.
 */
const SAMPLING_INTERVAL = 8 * 1024;

let running = false;

/** A profile is being taken: only one at a time. */
export class ProfileBusyError extends Error {
  override name = "ProfileBusyError";
}

/** Sample allocations for `seconds`, then return the profile as .heapprofile JSON text. */
export async function takeHeapProfile(seconds: number): Promise<string> {
  if (running) throw new ProfileBusyError("a heap profile is being taken; try again when it ends");
  running = true;
  const session = new Session();
  const post = <T>(method: string, params?: object) =>
    new Promise<T>((resolve, reject) => session.post(method, params ?? {}, (err, result) => (err ? reject(err) : resolve(result as T))));
  try {
    session.connect();
    await post("HeapProfiler.enable");
    await post("HeapProfiler.startSampling", { samplingInterval: SAMPLING_INTERVAL });
    await new Promise((r) => setTimeout(r, Math.min(MAX_PROFILE_SECONDS, Math.max(0, seconds)) * 1000));
    const { profile } = await post<{ profile: unknown }>("HeapProfiler.stopSampling");
    await post("HeapProfiler.disable");
    return JSON.stringify(profile);
  } finally {
    session.disconnect();
    running = false;
  }
}
