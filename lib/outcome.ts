/**
 * What the consumer reports: the outcome of each delivery, and what happens to its ledger.
 * Metrics, the demo and the tests read these.
 *
 * @module
 */

import type { PassedOn } from "./forwarder.ts";

/** What became of one delivery. */
export type Outcome =
  | {
    readonly kind: "created" | "duplicate";
    readonly refCode: string;
    /** Retries the message had before this attempt. */
    readonly attempt: number;
  }
  | PassedOn
  | {
    /** A copy of this hop was already passed on; this one is acked and dropped. */
    readonly kind: "skipped";
    readonly messageKey: string;
  }
  | {
    /**
     * Back to the queue, unchanged: the ledger was unavailable, or passing the message on failed
     * and the consumer stopped meanwhile.
     */
    readonly kind: "requeued";
    readonly messageKey: string | undefined;
    readonly error: string;
  };

/** What the consumer says about its ledger. */
export type LedgerEvent =
  | { readonly kind: "error"; readonly error: unknown }
  | { readonly kind: "unavailable"; readonly error: unknown }
  | { readonly kind: "back"; readonly unavailableMs: number };
