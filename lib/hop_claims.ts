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

/** The message-and-hop keys being processed, with who waits for each. */
export class HopClaims {
  readonly #claims = new Map<string, Array<() => void>>();

  /** Waits while another delivery of `key` at `hop` is being processed, then claims it. */
  async claim(key: string, hop: string): Promise<() => void> {
    const claim = hopKey(key, hop);
    let waiters = this.#claims.get(claim);
    while (waiters !== undefined) {
      const list = waiters === NO_WAITERS ? [] : waiters;
      this.#claims.set(claim, list);
      await new Promise<void>((resolve) => list.push(resolve));
      waiters = this.#claims.get(claim);
    }
    this.#claims.set(claim, NO_WAITERS);
    return () => {
      const list = this.#claims.get(claim);
      this.#claims.delete(claim);
      if (list !== undefined && list !== NO_WAITERS) { for (const wake of list) wake(); }
    };
  }
}
