/**
 * The live concurrency limit as credits: one credit per message between pull
 * and settlement (ack, nak or term). The pull loop takes credits before it
 * asks JetStream for messages, so nothing beyond the limit ever leaves the
 * stream: JetStream stays the buffer. The limit can change at any time;
 * lowering it lets work already in flight finish.
 */

import { createWakeSignal } from "./wake-signal.js";

export interface ConcurrencyLimit {
  /** The configured limit (KV key `concurrency`). */
  readonly limit: number;
  /** The limit in force: the configured one, capped while a cap is set. */
  readonly effectiveLimit: number;
  /** Credits taken: requested from JetStream or in flight. */
  readonly inUse: number;
  setLimit(limit: number): void;
  /** Cap the limit (the wait buffer before the first snapshot); null lifts it. */
  setCap(cap: number | null): void;
  /**
   * Wait until a batch worth pulling is free — a quarter of the limit, or
   * less when `max` is smaller — then take up to `max` credits.
   */
  acquire(max: number, signal: AbortSignal): Promise<number>;
  release(credits: number): void;
  /** Resolves once no credit is taken. */
  idle(): Promise<void>;
}

export function createConcurrencyLimit(initialLimit: number): ConcurrencyLimit {
  let limit = initialLimit;
  let cap: number | null = null;
  let inUse = 0;
  const freed = createWakeSignal();
  const idleWaiters: (() => void)[] = [];
  const effective = () => (cap === null ? limit : Math.min(limit, cap));

  return {
    get limit() {
      return limit;
    },
    get effectiveLimit() {
      return effective();
    },
    get inUse() {
      return inUse;
    },
    setLimit(next) {
      if (!Number.isInteger(next) || next < 1) throw new RangeError(`limit must be a positive integer, got ${next}`);
      limit = next;
      freed.wake();
    },
    setCap(next) {
      cap = next;
      freed.wake();
    },
    async acquire(max, signal) {
      if (freed.waiting) throw new Error("acquire is for one pull loop at a time");
      for (;;) {
        signal.throwIfAborted();
        const free = effective() - inUse;
        const worthPulling = Math.min(max, Math.max(1, Math.ceil(effective() / 4)));
        if (free >= worthPulling) {
          const taken = Math.min(free, max);
          inUse += taken;
          return taken;
        }
        await freed.wait(signal);
      }
    },
    release(credits) {
      if (credits === 0) return;
      if (credits < 0 || credits > inUse) throw new RangeError(`cannot release ${credits} of ${inUse} credits`);
      inUse -= credits;
      freed.wake();
      if (inUse === 0) idleWaiters.splice(0).forEach((resolve) => resolve());
    },
    idle() {
      return inUse === 0 ? Promise.resolve() : new Promise((resolve) => idleWaiters.push(resolve));
    },
  };
}
