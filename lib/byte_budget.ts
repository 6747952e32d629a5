/**
 * The bytes of deliveries a consumer holds, against a budget. AMQP's prefetch counts deliveries
 * (RabbitMQ does not implement the byte `prefetch-size`), and the broker sends a whole prefetch's
 * worth at once, so 500 deliveries of 100 MB would be 50 GB before the consumer could say no. So
 * the prefetch starts small and grows, like a TCP window: it doubles after a full window of bodies
 * small enough for the doubled one to fit in half the budget, up to the configured prefetch. Past
 * the budget the consumer stops taking deliveries, and takes them again, once half the budget is
 * free, with a prefetch that fits the largest body seen lately. A consumer that restarts (after a
 * crash, say) starts small again, so large bodies at the head of the queue come one at a time.
 * What it cannot bound: a burst of large bodies right after a full window of small ones, at most
 * the prefetch of them, once. A pure module: the consumer does the cancelling and consuming.
 *
 * @example
 * ```ts
 * const budget = new ByteBudget({ limitBytes: 64 << 20, prefetch: 500 });
 * budget.prefetchNow; // 1: nothing is known of the bodies yet
 * budget.take(100); // "grow": prefetchNow is 2; after 2 more small bodies, 4; … up to 500
 * ```
 *
 * @module
 */

/** The largest body a broker takes by default (RabbitMQ 3.x's `max_message_size`): 128 MiB. */
export const LARGEST_BODY = 128 * 1024 * 1024;

/** Options for {@linkcode ByteBudget}. */
export interface ByteBudgetOptions {
  /** The bytes of bodies held at most (but for the burst the module doc names). */
  readonly limitBytes: number;
  /** The prefetch the consumer runs with when bodies are small. */
  readonly prefetch: number;
}

/** What {@linkcode ByteBudget.take} says of a new delivery. */
export type TakeVerdict =
  /** Nothing to change. */
  | "ok"
  /** The budget is spent: stop taking deliveries. */
  | "over"
  /** A full window of small bodies: take deliveries with the larger `prefetchNow`. */
  | "grow";

/** Bytes held against a budget, and the prefetch that fits it. */
export class ByteBudget {
  readonly #limit: number;
  readonly #prefetch: number;
  #held = 0;
  #largest = 0;
  #small = 0;
  #prefetchNow: number;

  /** @throws {RangeError} when the limit or the prefetch is not a positive integer. */
  constructor({ limitBytes, prefetch }: ByteBudgetOptions) {
    if (!Number.isSafeInteger(limitBytes) || limitBytes < 1) {
      throw new RangeError(`limitBytes must be a positive integer, got ${limitBytes}`);
    }
    if (!Number.isSafeInteger(prefetch) || prefetch < 1) {
      throw new RangeError(`prefetch must be a positive integer, got ${prefetch}`);
    }
    this.#limit = limitBytes;
    this.#prefetch = prefetch;
    this.#prefetchNow = Math.min(prefetch, Math.max(1, Math.floor(limitBytes / LARGEST_BODY)));
  }

  /** Bytes held now. */
  get held(): number {
    return this.#held;
  }

  /** The prefetch to consume with now. */
  get prefetchNow(): number {
    return this.#prefetchNow;
  }

  /** A delivery of `bytes` arrived. */
  take(bytes: number): TakeVerdict {
    this.#held += bytes;
    if (this.#held > this.#limit) {
      this.#largest = Math.max(this.#largest, bytes);
      this.#small = 0;
      return "over";
    }
    if (this.#prefetchNow >= this.#prefetch) return "ok";
    const next = Math.min(this.#prefetch, this.#prefetchNow * 2);
    if (bytes * next > this.#limit / 2) {
      this.#largest = Math.max(this.#largest, bytes);
      this.#small = 0;
      return "ok";
    }
    if (++this.#small < this.#prefetchNow) return "ok";
    this.#small = 0;
    this.#largest = 0;
    this.#prefetchNow = next;
    return "grow";
  }

  /** A delivery of `bytes` was settled; true when a consumer stopped by the budget may resume. */
  give(bytes: number): boolean {
    this.#held -= bytes;
    return this.#held <= this.#limit / 2;
  }

  /**
   * After a stop: the prefetch to take deliveries with again, as many of the largest body seen
   * lately as fit in half the budget (at least 1), at most the prefetch before the stop.
   */
  resume(): number {
    const fit = Math.max(1, Math.floor(this.#limit / 2 / Math.max(1, this.#largest)));
    this.#prefetchNow = Math.min(this.#prefetchNow, fit);
    this.#small = 0;
    return this.#prefetchNow;
  }
}
