/**
 * Hold items until a rule snapshot exists, then pair each with the snapshot
 * current when it passes. Before the first snapshot the items wait here — at
 * most `maxWaiting`, a bound the pull loop already keeps (it caps its credits
 * to the same number) — and are kept alive while they wait, so JetStream
 * does not redeliver them.
 */
import { Observable, type OperatorFunction } from "rxjs";

/** More items arrived than the wait buffer allows: a defect upstream, never a normal outcome. */
export class WaitBufferOverflowError extends Error {
  override name = "WaitBufferOverflowError";
}

export interface AwaitSnapshotOptions<T> {
  readonly maxWaiting: number;
  /** Called on each waiting item every `keepAliveEveryMs` (JetStream: `msg.working()`). */
  readonly keepAlive: (item: T) => void;
  readonly keepAliveEveryMs: number;
  /** Called for items still waiting when the source completes (JetStream: `msg.nak()`). */
  readonly release: (item: T) => void;
  /** Told the number of waiting items whenever it changes. */
  readonly onWaiting?: (waiting: number) => void;
  /**
   * Each emission hands every waiting item back through `release`, and so are
   * items that arrive after it until a snapshot exists (the first rule load
   * failed: healthy instances on the same consumer take them).
   */
  readonly giveBack$?: Observable<unknown>;
}

export function awaitSnapshot<T, S>(
  snapshot$: Observable<S | null>,
  options: AwaitSnapshotOptions<T>,
): OperatorFunction<T, readonly [T, S]> {
  return (source) =>
    new Observable<readonly [T, S]>((subscriber) => {
      let current: S | null = null;
      let waiting: T[] = [];
      let timer: ReturnType<typeof setInterval> | undefined;
      let sourceDone = false;
      const setWaiting = (items: T[]) => {
        waiting = items;
        options.onWaiting?.(items.length);
        if (items.length === 0 && timer !== undefined) {
          clearInterval(timer);
          timer = undefined;
        }
      };
      const flush = () => {
        const held = waiting;
        setWaiting([]);
        for (const item of held) subscriber.next([item, current!] as const);
        if (sourceDone) subscriber.complete();
      };

      const snapshots = snapshot$.subscribe({
        next(snapshot) {
          current = snapshot;
          if (snapshot !== null && waiting.length > 0) flush();
        },
        error: (err) => subscriber.error(err),
      });
      // After a give-back, items that still arrive before a snapshot (an open pull request) go straight back.
      let handingBack = false;
      const givingBack = options.giveBack$?.subscribe(() => {
        handingBack = true;
        const held = waiting;
        setWaiting([]);
        held.forEach(options.release);
        if (sourceDone) subscriber.complete();
      });
      const items = source.subscribe({
        next(item) {
          if (current !== null) {
            subscriber.next([item, current] as const);
            return;
          }
          if (handingBack) {
            options.release(item);
            return;
          }
          if (waiting.length >= options.maxWaiting) {
            subscriber.error(new WaitBufferOverflowError(`more than ${options.maxWaiting} items waiting for the first rule snapshot`));
            return;
          }
          waiting.push(item);
          options.onWaiting?.(waiting.length);
          timer ??= setInterval(() => waiting.forEach(options.keepAlive), options.keepAliveEveryMs);
        },
        error: (err) => subscriber.error(err),
        complete() {
          sourceDone = true;
          if (current === null) {
            // Stopping before any snapshot: hand the waiting items back.
            const held = waiting;
            setWaiting([]);
            held.forEach(options.release);
          }
          if (waiting.length === 0) subscriber.complete();
        },
      });
      return () => {
        items.unsubscribe();
        snapshots.unsubscribe();
        givingBack?.unsubscribe();
        if (timer !== undefined) clearInterval(timer);
      };
    });
}
