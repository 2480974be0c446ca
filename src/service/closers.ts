/**
 * A part's cleanups, in the order the parts were opened: `closeAll()` runs them in reverse, once
 * (a second call returns the first's promise), each guarded so that one failing does not keep the
 * others from running (the failure is logged with the part's name).
 */
import type { Logger } from "pino";

export interface Closers {
  add(name: string, close: () => Promise<unknown> | void): void;
  closeAll(): Promise<void>;
}

export function createClosers(log: Logger): Closers {
  const closers: { name: string; close: () => Promise<unknown> | void }[] = [];
  let closing: Promise<void> | null = null;
  return {
    add(name, close) {
      if (closing !== null) throw new Error(`${name} opened after closing began`);
      closers.push({ name, close });
    },
    closeAll: () =>
      (closing ??= (async () => {
        for (const { name, close } of closers.reverse()) {
          try {
            await close();
          } catch (err) {
            log.warn({ err: (err as Error).message, part: name }, "closing failed");
          }
        }
      })()),
  };
}
