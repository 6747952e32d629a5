/**
 * Which deliveries of one channel one `basic.ack` with `multiple` may cover: every delivery up to
 * the highest tag below which all are settled. Raw's consumers settle deliveries as they please
 * (on receipt, or when a copy's confirm comes back, in any order) and ack once a turn up to that
 * tag. Pure.
 *
 * @module
 */

/** The settled deliveries of one channel, by delivery tag (1, 2, 3, … as the broker numbers them). */
export class AckWindow {
  /** The highest tag acknowledged so far. */
  #acked = 0;
  /** The lowest tag not yet settled. */
  #next = 1;
  /** Settled tags above an unsettled one. */
  readonly #ahead = new Set<number>();

  /** Marks delivery `tag` settled (acknowledged or rejected on its own). */
  settle(tag: number): void {
    if (tag < this.#next) return;
    if (tag !== this.#next) {
      this.#ahead.add(tag);
      return;
    }
    this.#next++;
    while (this.#ahead.delete(this.#next)) this.#next++;
  }

  /** How many settled deliveries wait for an ack that can cover them. */
  get waiting(): number {
    return this.#next - 1 - this.#acked;
  }

  /**
   * The tag to acknowledge with `multiple` (every delivery up to it is settled), counting them
   * acknowledged; undefined when none waits.
   */
  take(): number | undefined {
    if (this.#next - 1 === this.#acked) return undefined;
    this.#acked = this.#next - 1;
    return this.#acked;
  }
}
