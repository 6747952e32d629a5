/**
 * The schedule of new orders at a rate: how long until the next is due. The schedule starts at
 * the first order asked about, so time spent before it (resends, a reconnect) is not a backlog to
 * catch up, nor is time the caller was held ({@linkcode Pacer.held}); a timer that fires late is
 * caught up by sending what fell due meanwhile at once.
 * A pure module: the caller sleeps and says when it sent.
 *
 * @example
 * ```ts
 * const pacer = new Pacer(20); // 20 orders a second: one every 50 ms
 * pacer.wait(); // 0: the first is due now
 * pacer.sent();
 * pacer.wait(); // about 50
 * ```
 *
 * @module
 */

/** Paces new orders at a rate; see the module doc. */
export class Pacer {
  readonly #slotMs: number;
  readonly #now: () => number;
  #from: number | undefined;
  #sent = 0;

  /** Creates a pacer of `rate` orders a second; `now` is the clock, in milliseconds. */
  constructor(rate: number, now: () => number = () => performance.now()) {
    this.#slotMs = 1000 / rate;
    this.#now = now;
  }

  /** Milliseconds until the next order is due; 0 or less: it is due now. */
  wait(): number {
    const now = this.#now();
    this.#from ??= now;
    return this.#from + this.#sent * this.#slotMs - now;
  }

  /**
   * Says the loop was held for `ms` (a full window, a blocked broker, a socket to drain): the part
   * of it that put the schedule behind is forgiven, not caught up in a burst. Lateness from before
   * the hold (a timer that fired late) is still caught up, or the rate would fall short by it.
   */
  held(ms: number): void {
    if (this.#from === undefined) return;
    const behind = this.#now() - (this.#from + this.#sent * this.#slotMs);
    this.#from += Math.min(ms, Math.max(0, behind));
  }

  /** Counts an order sent. */
  sent(): void {
    this.#sent++;
  }
}
