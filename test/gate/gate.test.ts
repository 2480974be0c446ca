import { BehaviorSubject, mergeMap, Subject, toArray, lastValueFrom } from "rxjs";
import { afterEach, describe, expect, it, vi } from "vitest";
import { awaitSnapshot, WaitBufferOverflowError } from "../../src/gate/await-snapshot.js";
import { createConcurrencyLimit } from "../../src/gate/concurrency-limit.js";

const never = new AbortController().signal;

describe("concurrency limit", () => {
  it("hands out at most the limit and waits for a quarter of it to be free", async () => {
    const limit = createConcurrencyLimit(8);
    expect(await limit.acquire(100, never)).toBe(8);
    let got: number | undefined;
    const next = limit.acquire(100, never).then((n) => (got = n));
    limit.release(1);
    await Promise.resolve();
    expect(got).toBeUndefined(); // 1 free < 2 (a quarter of 8)
    limit.release(1);
    await next;
    expect(got).toBe(2);
    expect(limit.inUse).toBe(8);
  });

  it("follows a new limit: raising frees credits at once, lowering waits for in-flight work", async () => {
    const limit = createConcurrencyLimit(4);
    expect(await limit.acquire(100, never)).toBe(4);
    limit.setLimit(12);
    expect(await limit.acquire(100, never)).toBe(8);
    limit.setLimit(2);
    let got = 0;
    const next = limit.acquire(100, never).then((n) => (got = n));
    limit.release(10); // 2 in use: at the new limit, nothing free yet
    await Promise.resolve();
    expect(got).toBe(0);
    limit.release(1);
    await next;
    expect(got).toBe(1);
  });

  it("caps the limit until the cap is lifted", async () => {
    const limit = createConcurrencyLimit(64);
    limit.setCap(4);
    expect(limit.effectiveLimit).toBe(4);
    expect(await limit.acquire(100, never)).toBe(4);
    limit.setCap(null);
    expect(await limit.acquire(100, never)).toBe(60);
  });

  it("rejects a waiting acquire on abort, refuses bad limits and over-release, and reports idleness", async () => {
    const limit = createConcurrencyLimit(1);
    await limit.acquire(1, never);
    const abort = new AbortController();
    const waiting = limit.acquire(1, abort.signal);
    abort.abort(new Error("stopping"));
    await expect(waiting).rejects.toThrow("stopping");
    expect(() => limit.setLimit(0)).toThrow(RangeError);
    expect(() => limit.release(2)).toThrow(RangeError);
    let idle = false;
    const done = limit.idle().then(() => (idle = true));
    await Promise.resolve();
    expect(idle).toBe(false);
    limit.release(1);
    await done;
    expect(idle).toBe(true);
  });
});

describe("awaitSnapshot", () => {
  afterEach(() => vi.useRealTimers());

  it("holds items until the first snapshot, keeps them alive, then pairs each with the current snapshot", async () => {
    vi.useFakeTimers();
    const snapshot$ = new BehaviorSubject<string | null>(null);
    const source = new Subject<number>();
    const alive: number[] = [];
    const waitingCounts: number[] = [];
    const out: (readonly [number, string])[] = [];
    source
      .pipe(awaitSnapshot(snapshot$, { maxWaiting: 3, keepAlive: (n) => alive.push(n), keepAliveEveryMs: 1000, release: () => {}, onWaiting: (n) => waitingCounts.push(n) }))
      .subscribe((x) => out.push(x));
    source.next(1);
    source.next(2);
    vi.advanceTimersByTime(2500);
    expect(alive).toEqual([1, 2, 1, 2]);
    expect(out).toEqual([]);
    snapshot$.next("v1");
    expect(out).toEqual([[1, "v1"], [2, "v1"]]);
    source.next(3);
    snapshot$.next("v2");
    source.next(4);
    expect(out.slice(2)).toEqual([[3, "v1"], [4, "v2"]]);
    vi.advanceTimersByTime(5000);
    expect(alive).toHaveLength(4); // no keep-alive once nothing waits
    expect(waitingCounts).toEqual([1, 2, 0]);
  });

  it("fails loudly past its bound, and hands waiting items back when the source ends first", async () => {
    const snapshot$ = new BehaviorSubject<string | null>(null);
    const overflow = new Subject<number>();
    let error: unknown;
    overflow.pipe(awaitSnapshot(snapshot$, { maxWaiting: 1, keepAlive: () => {}, keepAliveEveryMs: 1000, release: () => {} })).subscribe({ error: (e) => (error = e) });
    overflow.next(1);
    overflow.next(2);
    expect(error).toBeInstanceOf(WaitBufferOverflowError);

    const released: number[] = [];
    const source = new Subject<number>();
    const all = lastValueFrom(source.pipe(awaitSnapshot(snapshot$, { maxWaiting: 5, keepAlive: () => {}, keepAliveEveryMs: 1000, release: (n) => released.push(n) }), toArray()));
    source.next(7);
    source.complete();
    expect(await all).toEqual([]);
    expect(released).toEqual([7]);
  });

  it("holds nothing once a snapshot exists: each item reaches mergeMap in the same tick it arrives", async () => {
    const snapshot$ = new BehaviorSubject<string | null>("v1");
    const source = new Subject<number>();
    const started: number[] = [];
    const finish: (() => void)[] = [];
    const done = lastValueFrom(
      source.pipe(
        awaitSnapshot(snapshot$, { maxWaiting: 10, keepAlive: () => {}, keepAliveEveryMs: 1000, release: () => {}, onWaiting: () => expect.fail("nothing may wait") }),
        mergeMap(async ([n]) => {
          started.push(n);
          await new Promise<void>((r) => finish.push(r));
          return n;
        }),
        toArray(),
      ),
    );
    for (let n = 1; n <= 50; n++) {
      source.next(n);
      // Synchronously in mergeMap already: no queue between the gate and the work.
      expect(started).toHaveLength(n);
    }
    source.complete();
    finish.forEach((f) => f());
    expect((await done).sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, k) => k + 1));
  });

  it("after a give-back, hands back what waits and what still arrives, until a snapshot exists", () => {
    const snapshot$ = new BehaviorSubject<string | null>(null);
    const giveBack$ = new Subject<void>();
    const source = new Subject<number>();
    const released: number[] = [];
    const out: (readonly [number, string])[] = [];
    source.pipe(awaitSnapshot(snapshot$, { maxWaiting: 5, keepAlive: () => {}, keepAliveEveryMs: 1000, release: (n) => released.push(n), giveBack$ })).subscribe((x) => out.push(x));
    source.next(1);
    source.next(2);
    giveBack$.next();
    expect(released).toEqual([1, 2]);
    source.next(3); // from a pull request still open
    expect(released).toEqual([1, 2, 3]);
    snapshot$.next("v1");
    source.next(4);
    expect(out).toEqual([[4, "v1"]]);
  });
});
