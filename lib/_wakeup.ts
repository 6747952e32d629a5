/**
 * Waiting for work without losing a wake-up: {@linkcode Wakeup} remembers one that came while
 * nobody waited, and {@linkcode pause} ends at whichever comes first of a timeout, an abort, a
 * promise that settles, or a hook. The outbox relay sleeps on them (outbox_relay.ts).
 *
 * @module
 */

/** Remembers a wake-up that came while nobody waited, so that none is lost. */
export class Wakeup {
  #pending = false;
  #waiter: (() => void) | undefined;

  /** Wakes the waiter, or the next one to wait. */
  readonly wake = (): void => {
    this.#pending = true;
    this.#waiter?.();
  };

  /** Forgets earlier wake-ups: what they announced is about to be read. */
  clear(): void {
    this.#pending = false;
  }

  /**
   * Resolves at a wake-up (at once if one came since {@linkcode clear}), after `ms`, when
   * `signal` aborts or `also` settles.
   */
  wait(ms: number, signal: AbortSignal, also?: Promise<unknown>): Promise<void> {
    return pause(ms, signal, also, (done) => {
      if (this.#pending) return done();
      this.#waiter = done;
      return () => (this.#waiter = undefined);
    });
  }
}

/**
 * Resolves after `ms`, when `signal` aborts, when `also` settles, or when `hook` calls its done;
 * `hook` returns its own clean-up.
 */
export function pause(
  ms: number,
  signal: AbortSignal,
  also?: Promise<unknown>,
  hook?: (done: () => void) => (() => void) | void,
): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    // Assigned after the hook returns: a hook may call done() before that.
    let unhook: (() => void) | void = undefined;
    let finished = false;
    const done = () => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      unhook?.();
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
    also?.then(done, done);
    unhook = hook?.(done);
  });
}
