/**
 * A circuit breaker for the ledger. When the ledger goes away (unreachable, locked, read-only,
 * full) the breaker opens: whoever uses it stops taking work, and the breaker probes the ledger
 * with bounded backoff until it answers, then closes and says how long it was open. Work is never
 * failed because of the outage; it waits.
 *
 * ```text
 *   closed ──trip(error)──▶ open ──probe ok──▶ closed
 *                             │ ▲
 *                             └─┘ probe fails: wait 250-500 ms, then doubling up to 0.6-1.2 s
 * ```
 *
 * @module
 */

import { backoffDelay, type BackoffOptions } from "./backoff.ts";

/**
 * The probe's backoff: the first probe after 250-500 ms, then doubling up to 0.6-1.2 s, so that
 * consuming resumes within 2 s of the ledger answering again, however long it was away.
 */
export const PROBE_BACKOFF: BackoffOptions = Object.freeze({ initialMs: 500, maxMs: 1_200 });

/** Options for {@linkcode Breaker}. */
export interface BreakerOptions {
  /** Resolves when the ledger can take work again; rejects while it cannot. */
  readonly probe: () => Promise<void>;
  /** Called once when the breaker opens, with the error that opened it. */
  readonly onOpen: (error: unknown) => void | Promise<void>;
  /** Called once when it closes again, with how long it was open in milliseconds. */
  readonly onClose: (openMs: number) => void | Promise<void>;
  /** Called after each failed probe. */
  readonly onProbeFailed?: (error: unknown, attempt: number) => void;
  /**
   * The delay before probe `attempt` (1 for the first), in milliseconds.
   * @default {backoffDelay(attempt, PROBE_BACKOFF)}
   */
  readonly delay?: (attempt: number) => number;
  /** Stops probing when aborted (the breaker stays open). */
  readonly signal?: AbortSignal;
}

/** Opens on an outage, probes until the ledger is back, closes. */
export class Breaker {
  readonly #options: BreakerOptions;
  #openedAt: number | undefined;
  #closed: PromiseWithResolvers<void> | undefined;
  #openMs = 0;

  /** A closed breaker. */
  constructor(options: BreakerOptions) {
    this.#options = options;
  }

  /** Whether the breaker is open: the ledger is away and work must wait. */
  get isOpen(): boolean {
    return this.#openedAt !== undefined;
  }

  /** Milliseconds spent open so far, the current outage included. */
  get openMs(): number {
    return this.#openMs + (this.#openedAt === undefined ? 0 : performance.now() - this.#openedAt);
  }

  /** Resolves once the breaker is closed (at once, if it is). */
  whenClosed(): Promise<void> {
    return this.#closed?.promise ?? Promise.resolve();
  }

  /** Opens the breaker for `error` and starts probing; does nothing if it is open already. */
  trip(error: unknown): void {
    if (this.#openedAt !== undefined) return;
    this.#openedAt = performance.now();
    this.#closed = Promise.withResolvers<void>();
    this.#probeUntilBack(error).catch(() => {});
  }

  async #probeUntilBack(error: unknown): Promise<void> {
    const { probe, signal } = this.#options;
    const delay = this.#options.delay ?? ((attempt) => backoffDelay(attempt, PROBE_BACKOFF));
    await this.#options.onOpen(error);
    for (let attempt = 1;; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, delay(attempt)));
      if (signal?.aborted) return;
      try {
        await probe();
        break;
      } catch (probeError) {
        this.#options.onProbeFailed?.(probeError, attempt);
      }
    }
    const openMs = performance.now() - this.#openedAt!;
    this.#openMs += openMs;
    this.#openedAt = undefined;
    const closed = this.#closed!;
    this.#closed = undefined;
    await this.#options.onClose(openMs);
    closed.resolve();
  }
}
