/**
 * The bytes of messages held between pull and settlement, as a budget: each
 * pull request asks the server for at most the bytes free (`max_bytes`), and
 * a settled message gives its bytes back. With results of up to 1 MiB, this
 * (not the message limit) bounds what a high concurrency can hold in memory:
 * message bodies in the process never exceed `maxBytes`.
 */
import { createWakeSignal } from "./wake-signal.js";

export interface ByteBudget {
  readonly maxBytes: number;
  readonly inUse: number;
  /** Wait until at least `min` bytes are free, then take every free byte (at most `max`). */
  acquire(min: number, max: number, signal: AbortSignal): Promise<number>;
  release(bytes: number): void;
}

export function createByteBudget(maxBytes: number): ByteBudget {
  let inUse = 0;
  const freed = createWakeSignal();
  return {
    maxBytes,
    get inUse() {
      return inUse;
    },
    async acquire(min, max, signal) {
      for (;;) {
        signal.throwIfAborted();
        const free = maxBytes - inUse;
        if (free >= min) {
          const taken = Math.min(free, max);
          inUse += taken;
          return taken;
        }
        await freed.wait(signal);
      }
    },
    release(bytes) {
      if (bytes === 0) return;
      if (bytes < 0 || bytes > inUse) throw new RangeError(`cannot release ${bytes} of ${inUse} bytes`);
      inUse -= bytes;
      freed.wake();
    },
  };
}
