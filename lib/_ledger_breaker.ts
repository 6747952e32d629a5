/**
 * The consumer's breaker on its ledger (breaker.ts): when the ledger goes away, the consumer stops
 * taking deliveries (those it holds are put back) and probes the ledger until it answers; then it
 * takes deliveries again. Used by consumer.ts only.
 *
 * @module
 */

import { Breaker } from "./breaker.ts";
import type { ConsumerOptions } from "./consumer_options.ts";
import { describeError } from "./errors.ts";
import { logger } from "./log.ts";

const log = logger("consumer");

/** What the breaker switches: the consumer's taking of deliveries (intake.ts). */
export interface Taking {
  cancel(): Promise<void>;
  resume(): Promise<void>;
}

/** The breaker on `options.ledger`, pausing and resuming `taking`. */
export function ledgerBreaker(options: ConsumerOptions, taking: Taking): Breaker {
  const ledger = options.ledgerName ?? "the ledger";
  return new Breaker({
    probe: () => options.ledger.probe(),
    onOpen: async (error) => {
      log.error("ledger unavailable: consumption paused, deliveries put back", {
        ledger,
        error: describeError(error),
      });
      options.onLedger?.({ kind: "unavailable", error });
      await taking.cancel();
    },
    onClose: async (unavailableMs) => {
      // Unless the byte budget still says no (intake.ts).
      log.error("ledger back: consuming again", {
        ledger,
        unavailableMs: Math.round(unavailableMs),
      });
      options.onLedger?.({ kind: "back", unavailableMs });
      await taking.resume();
    },
    onProbeFailed: (error, attempt) =>
      log.info("ledger still unavailable", { attempt, error: describeError(error) }),
    ...(options.probeDelay ? { delay: options.probeDelay } : {}),
  });
}
