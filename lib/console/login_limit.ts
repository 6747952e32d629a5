/**
 * How many wrong credentials one client address may try: a few for free, then a wait that doubles
 * with each further failure, up to a quarter of an hour. While it waits, the address gets 429
 * with `Retry-After`, and even a right credential is not looked at (else guessing would go on,
 * and a right guess be let in). A right credential does not wipe the count either (else a viewer
 * could reset it between guesses at the operator token); the count is forgotten after an hour
 * without a failure. Pure: the clock is passed in.
 *
 * @example
 * ```ts
 * // The waits after each failure, with the defaults:
 * // failures  1-4  5    6    7    8  ...  15+
 * // wait      0    1 s  2 s  4 s  8 s ... 15 min
 * ```
 *
 * @module
 */

/** The policy of a {@linkcode LoginLimit}. */
export interface LoginLimitOptions {
  /**
   * Failures an address may make before it has to wait.
   * @default {4}
   */
  readonly freeFailures?: number;
  /**
   * The wait after the first failure beyond the free ones; each further one doubles it.
   * @default {1000}
   */
  readonly firstWaitMs?: number;
  /**
   * The longest wait.
   * @default {900000}
   */
  readonly maxWaitMs?: number;
  /**
   * How long after its last failure an address is forgotten.
   * @default {3600000}
   */
  readonly forgetAfterMs?: number;
  /**
   * The most addresses remembered; the one that failed longest ago is forgotten first.
   * @default {10000}
   */
  readonly maxClients?: number;
  /**
   * The clock, in milliseconds.
   * @default {Date.now}
   */
  readonly now?: () => number;
}

interface Failures {
  count: number;
  /** When the last one was. */
  last: number;
}

/** Counts failed logins by client address and tells how long an address must wait. */
export class LoginLimit {
  readonly #free: number;
  readonly #firstWaitMs: number;
  readonly #maxWaitMs: number;
  readonly #forgetAfterMs: number;
  readonly #maxClients: number;
  readonly #now: () => number;
  /** In the order of their last failure, oldest first. */
  readonly #clients = new Map<string, Failures>();

  /** A limit with the given policy. */
  constructor(options: LoginLimitOptions = {}) {
    this.#free = options.freeFailures ?? 4;
    this.#firstWaitMs = options.firstWaitMs ?? 1_000;
    this.#maxWaitMs = options.maxWaitMs ?? 900_000;
    this.#forgetAfterMs = options.forgetAfterMs ?? 3_600_000;
    this.#maxClients = options.maxClients ?? 10_000;
    this.#now = options.now ?? Date.now;
  }

  /** How long, in milliseconds, `client` must wait before its credentials are looked at: 0 for none. */
  waitMs(client: string): number {
    const failures = this.#current(client);
    if (failures === undefined || failures.count <= this.#free) return 0;
    const wait = Math.min(
      this.#maxWaitMs,
      this.#firstWaitMs * 2 ** Math.min(failures.count - this.#free - 1, 52),
    );
    return Math.max(0, failures.last + wait - this.#now());
  }

  /** Records a wrong credential from `client`; returns the wait it now has (0 for none). */
  failed(client: string): number {
    const now = this.#now();
    const count = (this.#current(client)?.count ?? 0) + 1;
    this.#clients.delete(client);
    this.#clients.set(client, { count, last: now });
    for (const [oldest] of this.#clients) {
      if (this.#clients.size <= this.#maxClients) break;
      this.#clients.delete(oldest);
    }
    return this.waitMs(client);
  }

  /** The failures of `client` not yet forgotten. */
  #current(client: string): Failures | undefined {
    const failures = this.#clients.get(client);
    if (failures !== undefined && this.#now() - failures.last >= this.#forgetAfterMs) {
      this.#clients.delete(client);
      return undefined;
    }
    return failures;
  }
}
