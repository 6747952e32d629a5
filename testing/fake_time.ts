/**
 * A fake clock for code that waits with `setTimeout`, measures with `performance.now()` and draws
 * jitter from `Math.random()` without taking them as options: while installed, every timer is
 * recorded with the delay it asked for and fires at once (on the next turn of the event loop, in
 * the order they are due), the clock moving on by that delay; `Math.random()` returns a fixed
 * value. Uninstall it with `using`.
 *
 * @example
 * ```ts
 * using time = fakeTime({ random: 0 });
 * await somethingThatWaits();
 * time.delays; // [250, 500, 600]: what it asked setTimeout for
 * ```
 *
 * @module
 */

/** Options for {@linkcode fakeTime}. */
export interface FakeTimeOptions {
  /** What `Math.random()` returns while installed, in [0, 1). */
  readonly random: number;
}

/** An installed fake clock. */
export interface FakeTime extends Disposable {
  /** The delay of every timer set while installed, in milliseconds, in the order they were set. */
  readonly delays: readonly number[];
  /** The fake time that has passed since it was installed, in milliseconds. */
  readonly elapsedMs: number;
}

interface Timer {
  readonly id: number;
  readonly due: number;
  readonly fire: () => void;
}

/** Installs the fake clock; see the module doc. */
export function fakeTime(options: FakeTimeOptions): FakeTime {
  const ownNow = Object.hasOwn(performance, "now");
  const real = {
    setTimeout: globalThis.setTimeout,
    clearTimeout: globalThis.clearTimeout,
    now: performance.now,
    random: Math.random,
  };
  const start = real.now.call(performance);
  let elapsed = 0;
  let nextId = 1;
  const delays: number[] = [];
  const pending: Timer[] = [];
  let ticking: ReturnType<typeof setTimeout> | undefined;

  const tick = () => {
    ticking = undefined;
    pending.sort((a, b) => a.due - b.due || a.id - b.id);
    const timer = pending.shift();
    if (pending.length > 0) ticking = real.setTimeout(tick, 0);
    if (timer === undefined) return;
    elapsed = Math.max(elapsed, timer.due);
    timer.fire();
  };

  globalThis.setTimeout = ((handler: unknown, ms?: number, ...args: unknown[]) => {
    const delay = Math.max(0, Number(ms ?? 0));
    delays.push(delay);
    const id = nextId++;
    const fire = typeof handler === "function"
      ? () => (handler as (...a: unknown[]) => void)(...args)
      : () => {};
    pending.push({ id, due: elapsed + delay, fire });
    ticking ??= real.setTimeout(tick, 0);
    return id;
  }) as unknown as typeof setTimeout;
  globalThis.clearTimeout = ((id?: number) => {
    const index = pending.findIndex((t) => t.id === id);
    if (index >= 0) pending.splice(index, 1);
  }) as unknown as typeof clearTimeout;
  performance.now = () => start + elapsed;
  Math.random = () => options.random;

  return {
    delays,
    get elapsedMs() {
      return elapsed;
    },
    [Symbol.dispose]() {
      globalThis.setTimeout = real.setTimeout;
      globalThis.clearTimeout = real.clearTimeout;
      if (ownNow) performance.now = real.now;
      else delete (performance as { now?: () => number }).now;
      Math.random = real.random;
      if (ticking !== undefined) real.clearTimeout(ticking);
      pending.length = 0;
    },
  };
}
