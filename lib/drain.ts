/**
 * Waiting until a consumer has nothing left to do: for `--drain`, the demo and the tests.
 *
 * @module
 */

import type { Broker } from "./broker.ts";

/** What {@linkcode waitUntilDrained} watches. */
export interface DrainWatch {
  readonly broker: Broker;
  /** The queues that must be empty (the work queue and the retry tiers). */
  readonly queues: readonly string[];
  /** Work the consumer holds: deliveries in flight and ledger writes pending. */
  readonly busy: () => number;
  /** Deliveries received so far. */
  readonly deliveries: () => number;
  /** Whether the consumer stopped. */
  readonly stopped: () => boolean;
  /**
   * The time (epoch ms) before which the work is not drained whatever the queues say: the last
   * retry the consumer scheduled in the delayed exchange is due then, and no queue counts it.
   * @default {() => 0}
   */
  readonly notBefore?: () => number;
  /** @default {100} */
  readonly intervalMs?: number;
  readonly signal?: AbortSignal;
}

/**
 * Resolves once the queues are empty and the consumer holds nothing, seen twice in a row
 * `intervalMs` apart with no delivery in between, and not before `notBefore()`.
 *
 * @throws {Error} when the consumer stops first; the abort reason when `signal` aborts.
 */
export async function waitUntilDrained(watch: DrainWatch): Promise<void> {
  const intervalMs = watch.intervalMs ?? 100;
  const probe = await watch.broker.channel();
  try {
    let quietChecks = 0;
    let lastDeliveries = -1;
    while (quietChecks < 2) {
      watch.signal?.throwIfAborted();
      if (watch.stopped()) throw new Error("the consumer stopped before the queues drained");
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
      let waiting = watch.busy();
      for (const queue of watch.queues) waiting += (await probe.checkQueue(queue)).messageCount;
      const deliveries = watch.deliveries();
      const due = (watch.notBefore?.() ?? 0) > Date.now();
      const quiet = waiting === 0 && !due && deliveries === lastDeliveries;
      lastDeliveries = deliveries;
      quietChecks = quiet ? quietChecks + 1 : 0;
    }
  } finally {
    await probe.close().catch(() => {});
  }
}
