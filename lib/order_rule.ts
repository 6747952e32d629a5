/**
 * OrdemDeProducao's rule on an order read from a delivery: a body that is not an order fails for
 * good (`invalid`, or `unsupported-version` for a message a newer release must take); an order
 * over the quantity limit fails for now, and is retried as the Go services retry it; any other
 * order is taken. Pure: no broker, no ledger.
 *
 * @module
 */

import { PermanentError, TransientError } from "./errors.ts";
import type { Order, ParseOrderResult } from "./order.ts";

/** How many quantities' over-limit failures {@linkcode OrderRule} keeps made (256). */
export const KEPT_FAILURES = 256;

/** The rule, for orders up to `maxQuantity` units. */
export class OrderRule {
  readonly #maxQuantity: number;
  /** The over-limit failure of each quantity seen lately (see {@linkcode OrderRule.check}). */
  readonly #overLimit = new Map<number, TransientError>();

  /** A rule that takes orders of at most `maxQuantity` units. */
  constructor(maxQuantity: number) {
    this.#maxQuantity = maxQuantity;
  }

  /**
   * The order, or why it fails: returned, not thrown, since a failing order is an everyday outcome
   * and unwinding an exception through the consumer's async frames costs more than deciding its
   * retry. The failure of an order over the limit is made once per quantity and kept for the next
   * {@linkcode KEPT_FAILURES} quantities: constructing an Error costs Deno 1.5 to 2 µs, as much as
   * deciding the retry, and the failure carries nothing of the message but its quantity (no stack
   * is ever read).
   */
  check(parsed: ParseOrderResult): Order | TransientError | PermanentError {
    if (!parsed.ok) {
      const { code, message } = parsed.rejection;
      return code === "unsupported_version"
        ? new PermanentError(`unsupported version: ${message}`, { code: "unsupported-version" })
        : new PermanentError(`invalid order: ${message}`, { code: "invalid" });
    }
    const { order } = parsed;
    if (order.quantity <= this.#maxQuantity) return order;
    let error = this.#overLimit.get(order.quantity);
    if (error === undefined) {
      if (this.#overLimit.size >= KEPT_FAILURES) this.#overLimit.clear();
      error = new TransientError(
        `maximum quantity exceeded: ${order.quantity} > ${this.#maxQuantity}`,
        { code: "quantity_exceeded" },
      );
      this.#overLimit.set(order.quantity, error);
    }
    return error;
  }
}
