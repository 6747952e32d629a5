/**
 * Backoff arithmetic: exponential delays with "equal jitter", shared by reconnecting to the broker,
 * publishing a refused copy again and waiting for a ledger that is starting (pure: randomness comes
 * in as an argument); and a timeout that doubles each time it was too short.
 *
 * The first delay is at least {@linkcode MIN_RECONNECT_DELAY_MS}: on RabbitMQ 3.10 a publisher that
 * reconnects within ~100 ms of losing a quorum queue's leader can wait forever for its confirms.
 *
 * @module
 */

/** No reconnect waits less than this, in milliseconds. */
export const MIN_RECONNECT_DELAY_MS = 250;

/** How delays grow. */
export interface BackoffOptions {
  /**
   * The base of the first delay, in milliseconds; each round doubles it. With equal jitter a
   * delay lies between half its base and its base, and never below
   * {@linkcode MIN_RECONNECT_DELAY_MS}.
   * @default {500}
   */
  readonly initialMs?: number;
  /**
   * The largest base, in milliseconds.
   * @default {15000}
   */
  readonly maxMs?: number;
}

/**
 * The delay before round `round` of a retried operation (1 for the first): a reconnect, a
 * republish, a ledger that is not up yet;: "equal jitter", half of the doubled
 * base fixed and half random, so clients that lost the same broker do not come back in step.
 *
 * @example
 * ```ts
 * // random() = 0 gives the lower bound, random() -> 1 the upper one:
 * // round:  1          2           3            4             ... 7+
 * // delay:  250-500    500-1000    1000-2000    2000-4000     ... 7500-15000
 * ```
 */
export function backoffDelay(
  round: number,
  options: BackoffOptions = {},
  random: () => number = Math.random,
): number {
  const initialMs = options.initialMs ?? 500;
  const maxMs = options.maxMs ?? 15_000;
  const base = Math.min(maxMs, initialMs * 2 ** Math.max(0, Math.min(round - 1, 30)));
  const delay = base / 2 + (base / 2) * random();
  return Math.max(MIN_RECONNECT_DELAY_MS, Math.round(delay));
}

/**
 * A timeout that doubles each time it was too short, up to `maxMs` (or its base, if larger), and
 * goes back to its base once it sufficed: what a new session waits for a first confirm or a first
 * delivery after sessions that waited it out, so that a broker merely slow is given longer each
 * time rather than given up on again and again.
 */
export class DoublingTimeout {
  readonly #baseMs: number;
  readonly #maxMs: number;
  #ms: number;

  /** Starts at `baseMs`. */
  constructor(baseMs: number, maxMs: number) {
    this.#baseMs = baseMs;
    this.#maxMs = Math.max(maxMs, baseMs);
    this.#ms = baseMs;
  }

  /** The timeout now, in milliseconds. */
  get ms(): number {
    return this.#ms;
  }

  /** It ran out: the next one is twice as long. */
  tooShort(): void {
    this.#ms = Math.min(this.#ms * 2, this.#maxMs);
  }

  /** What it waited for came in time: the next one is the base again. */
  sufficed(): void {
    this.#ms = this.#baseMs;
  }
}
