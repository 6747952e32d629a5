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
  #held = false;

  /** Creates a pacer of `rate` orders a second; `now` is the clock, in milliseconds. */
  constructor(rate: number, now: () => number = () => performance.now()) {
    this.#slotMs = 1000 / rate;
    this.#now = now;
  }

  /** Milliseconds until the next order is due; 0 or less: it is due now. */
  wait(): number {
    const now = this.#now();
    this.#from ??= now;
    const wait = this.#from + this.#sent * this.#slotMs - now;
    // Held (a full window, a blocked broker) and now behind by more than an order's slot: what
    // fell due meanwhile is not a backlog to burst through, so the schedule moves to now. A timer
    // that merely fired late is caught up instead, or the rate would fall short by its lateness.
    const held = this.#held;
    this.#held = false;
    if (held && wait < -this.#slotMs) {
      this.#from = now - this.#sent * this.#slotMs;
      return 0;
    }
    return wait;
  }

  /** Says the loop was held (a full window, a blocked broker): the next wait forgives the time. */
  held(): void {
    this.#held = true;
  }

  /** Counts an order sent. */
  sent(): void {
    this.#sent++;
  }
}
