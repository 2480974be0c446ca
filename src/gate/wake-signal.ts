/**
 * One waiter woken by the next `wake()`, or rejected when its abort signal
 * fires: the wait both gates (message credits, byte budget) use between a
 * failed take and the release that may let it succeed.
 */
export interface WakeSignal {
  /** Resolves at the next wake(); rejects with the signal's reason on abort. */
  wait(signal: AbortSignal): Promise<void>;
  /** Whether someone waits now. */
  readonly waiting: boolean;
  wake(): void;
}

export function createWakeSignal(): WakeSignal {
  let wakeOne: (() => void) | null = null;
  return {
    get waiting() {
      return wakeOne !== null;
    },
    wait(signal) {
      return new Promise<void>((resolve, reject) => {
        const onAbort = () => {
          wakeOne = null;
          reject(signal.reason);
        };
        signal.addEventListener("abort", onAbort, { once: true });
        wakeOne = () => {
          signal.removeEventListener("abort", onAbort);
          resolve();
        };
      });
    },
    wake() {
      const w = wakeOne;
      wakeOne = null;
      w?.();
    },
  };
}
