/**
 * One delivery at a time per message and hop. Two copies of one retry can be in flight at once
 * (published twice because a confirm was lost); the second waits until the first is settled, then
 * finds the hop recorded as passed on and is dropped instead of being passed on a second time.
 *
 * @module
 */

import { hopKey } from "./ledger.ts";

/** A claim nobody waits for (no array allocated per message). */
const NO_WAITERS: Array<() => void> = [];

/** Lets a claim go, waking the next delivery that waits for it. */
export type Release = () => void;

/** The message-and-hop keys being processed, with who waits for each. */
export class HopClaims {
  readonly #claims = new Map<string, Array<() => void>>();

  /**
   * Claims `key` at `hop`: at once when no other delivery of it is being processed (the everyday
   * case, with no promise made), else once the deliveries ahead of this one have let it go.
   */
  claim(key: string, hop: string): Release | Promise<Release> {
    const claim = hopKey(key, hop);
    return this.#claims.has(claim) ? this.#waitFor(claim) : this.#take(claim);
  }

  async #waitFor(claim: string): Promise<Release> {
    let waiters = this.#claims.get(claim);
    while (waiters !== undefined) {
      const list = waiters === NO_WAITERS ? [] : waiters;
      this.#claims.set(claim, list);
      await new Promise<void>((resolve) => list.push(resolve));
      waiters = this.#claims.get(claim);
    }
    return this.#take(claim);
  }

  #take(claim: string): Release {
    this.#claims.set(claim, NO_WAITERS);
    return () => {
      const list = this.#claims.get(claim);
      this.#claims.delete(claim);
      if (list !== undefined && list !== NO_WAITERS) { for (const wake of list) wake(); }
    };
  }
}
