/**
 * A real ledger (SQLite in memory unless given) that a test can stall or take away: commits held
 * until the test lets them go, to see what a consumer does with work in flight; or the whole
 * ledger unavailable, as an outage of its database would make it, to see the consumer pause.
 *
 * @module
 */

import { LedgerUnavailableError } from "../lib/errors.ts";
import type {
  Ledger,
  LedgerJourney,
  LedgerResult,
  LedgerWrite,
  ProductionOrder,
} from "../lib/ledger.ts";

/** A ledger whose commits can be held and whose database can be taken away; see the module doc. */
export class ControlledLedger implements Ledger {
  readonly #inner: Ledger;
  #held: PromiseWithResolvers<void> | undefined;
  #heldWrites = 0;
  readonly #waiters = new Set<() => void>();
  /** While true, every operation fails with a {@linkcode LedgerUnavailableError}. */
  away = false;

  /** Wraps `inner`. */
  constructor(inner: Ledger) {
    this.#inner = inner;
  }

  /** From now on, commits wait (without reaching the database) until {@linkcode release}. */
  hold(): void {
    this.#held ??= Promise.withResolvers<void>();
  }

  /** Lets the held commits go on to the database, and stops holding. */
  release(): void {
    const held = this.#held;
    this.#held = undefined;
    held?.resolve();
  }

  /** How many writes wait in held commits. */
  get heldWrites(): number {
    return this.#heldWrites;
  }

  /** Resolves once at least `writes` writes wait in held commits; rejects after `timeoutMs`. */
  untilHeld(writes: number, timeoutMs = 10_000): Promise<void> {
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    const check = () => {
      if (this.#heldWrites < writes) return;
      clearTimeout(timer);
      this.#waiters.delete(check);
      resolve();
    };
    const timer = setTimeout(() => {
      this.#waiters.delete(check);
      reject(new Error(`timed out: ${this.#heldWrites}/${writes} writes held`));
    }, timeoutMs);
    this.#waiters.add(check);
    check();
    return promise;
  }

  #check(): void {
    if (this.away) {
      throw new LedgerUnavailableError("the test took the ledger away", { code: "test" });
    }
  }

  async commit(writes: readonly LedgerWrite[]): Promise<LedgerResult[]> {
    this.#check();
    const held = this.#held;
    if (held) {
      this.#heldWrites += writes.length;
      for (const wake of this.#waiters) wake();
      try {
        await held.promise;
      } finally {
        this.#heldWrites -= writes.length;
      }
      this.#check();
    }
    return await this.#inner.commit(writes);
  }

  async wasForwarded(messageKey: string, hop: string): Promise<boolean> {
    this.#check();
    return await this.#inner.wasForwarded(messageKey, hop);
  }

  findOrder(refCode: string): Promise<ProductionOrder | undefined> {
    return this.#inner.findOrder(refCode);
  }

  countOrders(): Promise<number> {
    return this.#inner.countOrders();
  }

  journey(refCode: string): Promise<LedgerJourney> {
    return this.#inner.journey(refCode);
  }

  async probe(): Promise<void> {
    this.#check();
    await this.#inner.probe();
  }

  close(): Promise<void> {
    this.release();
    return this.#inner.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
