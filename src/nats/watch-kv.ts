/**
 * Watch a KV bucket for as long as asked: every entry (the current values
 * first, then each change) is handed to `onEntry`, and a watch that ends (a
 * NATS restart, the bucket recreated) is started again after a pause. Applying
 * a value twice must be harmless: each new watch delivers the current values again.
 */
import type { KV, KvWatchEntry } from "@nats-io/kv";
import type { Logger } from "pino";

/** Pause before watching again after the watch ended. */
export const REWATCH_MS = 1_000;

export function watchKv(kv: KV, what: string, onEntry: (entry: KvWatchEntry) => void, log: Logger, opts: { key?: string } = {}): { stop(): void } {
  let stopped = false;
  let iterator: { stop(): void } | undefined;
  const watchOnce = async () => {
    try {
      const watch = await kv.watch(opts.key === undefined ? {} : { key: opts.key });
      iterator = watch;
      if (stopped) watch.stop();
      for await (const entry of watch) onEntry(entry);
    } catch (err) {
      if (!stopped) log.warn({ err: (err as Error).message }, `${what} watch failed`);
    }
  };
  void (async () => {
    while (!stopped) {
      await watchOnce();
      if (!stopped) {
        log.warn(`${what} watch ended; watching again`);
        await new Promise((r) => setTimeout(r, REWATCH_MS));
      }
    }
  })();
  return {
    stop() {
      stopped = true;
      iterator?.stop();
    },
  };
}
