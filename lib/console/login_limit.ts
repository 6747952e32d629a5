/**
 * How many wrong credentials one client address may try: a few for free, then a wait that doubles
 * with each further failure, up to a quarter of an hour. While it waits, the address gets 429
 * with `Retry-After`, and even a right credential is not looked at (else guessing would go on,
 * and a right guess be let in). A right credential does not wipe the count either (else a viewer
 * could reset it between guesses at the operator token); the count is forgotten after an hour
 * without a failure. It remembers a bounded number of addresses, and which it forgets to make room
 * is chosen so that many addresses failing once cannot push out a guesser's count (see
 * {@linkcode LoginLimitOptions.maxClients}). Pure: the clock is passed in.
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
   * The most addresses remembered. When a new one fails with the table full, the one forgotten is
   * one whose failures are forgotten anyway (an hour old), else one with the fewest failures, the
   * one that failed longest ago among those. Not simply the oldest: then failing once from each
   * of `maxClients` addresses (IPv6 hands out plenty) would push out a guesser who is being held
   * back, and with it the wait it has earned. Now an address that fails once pushes out only
   * addresses that have failed once; to push out one that has failed `n` times takes `n` failures
   * from each of `maxClients` addresses, each waiting out its own growing waits, for a guesser
   * who then starts again with four free guesses. What an address pushed out before its wait
   * began gets back is its free failures, which a fresh address has anyway.
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
  /** The same addresses by their count of failures, each in the order of its last failure. */
  readonly #byCount = new Map<number, Set<string>>();

  /**
   * A limit with the given policy.
   * @throws {RangeError} when `maxClients` is not a whole number of at least 1.
   */
  constructor(options: LoginLimitOptions = {}) {
    this.#free = options.freeFailures ?? 4;
    this.#firstWaitMs = options.firstWaitMs ?? 1_000;
    this.#maxWaitMs = options.maxWaitMs ?? 900_000;
    this.#forgetAfterMs = options.forgetAfterMs ?? 3_600_000;
    this.#maxClients = options.maxClients ?? 10_000;
    if (!Number.isInteger(this.#maxClients) || this.#maxClients < 1) {
      throw new RangeError(
        `maxClients must be a whole number of at least 1, not ${options.maxClients}`,
      );
    }
    this.#now = options.now ?? Date.now;
  }

  /** How many addresses are remembered: at most `maxClients`. */
  get size(): number {
    return this.#clients.size;
  }

  /** How many failures of `client` are remembered: 0 for none, or once forgotten. */
  failures(client: string): number {
    return this.#current(client)?.count ?? 0;
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
    const before = this.#current(client);
    if (before === undefined) this.#makeRoom(now);
    else this.#forget(client, before);
    const failures = { count: (before?.count ?? 0) + 1, last: now };
    this.#clients.set(client, failures);
    let same = this.#byCount.get(failures.count);
    if (same === undefined) this.#byCount.set(failures.count, same = new Set());
    same.add(client);
    return this.waitMs(client);
  }

  /** Forgets addresses until one more fits: see {@linkcode LoginLimitOptions.maxClients}. */
  #makeRoom(now: number): void {
    while (this.#clients.size >= this.#maxClients) {
      const [oldest, failures] = this.#clients.entries().next().value!;
      if (now - failures.last >= this.#forgetAfterMs) {
        this.#forget(oldest, failures);
        continue;
      }
      let fewest = Infinity;
      for (const count of this.#byCount.keys()) fewest = Math.min(fewest, count);
      const [first] = this.#byCount.get(fewest)!;
      this.#forget(first!, this.#clients.get(first!)!);
    }
  }

  #forget(client: string, failures: Failures): void {
    this.#clients.delete(client);
    const same = this.#byCount.get(failures.count);
    same?.delete(client);
    if (same?.size === 0) this.#byCount.delete(failures.count);
  }

  /** The failures of `client` not yet forgotten. */
  #current(client: string): Failures | undefined {
    const failures = this.#clients.get(client);
    if (failures !== undefined && this.#now() - failures.last >= this.#forgetAfterMs) {
      this.#forget(client, failures);
      return undefined;
    }
    return failures;
  }
}
