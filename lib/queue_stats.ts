/**
 * The broker-side numbers an operator alerts on, read by OrdemDeProducao at scrape time: the depth
 * of the work queue, each retry tier and the DLQ, the work queue's consumers, and how long ago the
 * oldest dead letter was dead-lettered. Passive declares only, plus a one-message peek at the head
 * of a classic DLQ, skipped while another consumer (a `dlq` command) walks it. A quorum DLQ is not
 * peeked at: it puts a letter given back behind the others (3.10, 4.0 and 4.3 alike), so every
 * scrape would move the oldest letter to the back, and a DLQ with a delivery limit would spend it;
 * its oldest age is left unknown.
 *
 * @module
 */

import type { Broker } from "./broker.ts";
import { toDeadLetter } from "./dead_letters.ts";
import type { Topology } from "./topology.ts";

/** What {@linkcode readQueueStats} found. */
export interface QueueStats {
  /** Ready messages by queue role: `work`, `dlq`, and `retry-<ms>ms` for each tier. */
  readonly depth: Readonly<Record<string, number>>;
  /** Consumers of the work queue. */
  readonly workConsumers: number;
  /** Seconds since the oldest dead letter was dead-lettered; undefined when unknown or none. */
  readonly oldestDeadLetterSeconds: number | undefined;
}

/**
 * Reads the numbers; throws when the broker cannot be asked (the scrape then leaves them out).
 * Without `oldest` the DLQ's head is not peeked at, and the oldest age is left unknown.
 */
export async function readQueueStats(
  broker: Broker,
  topo: Topology,
  { oldest = true }: { readonly oldest?: boolean } = {},
): Promise<QueueStats> {
  const channel = await broker.channel();
  try {
    const depth: Record<string, number> = {};
    const work = await channel.checkQueue(topo.queue);
    depth.work = work.messageCount;
    for (const tier of topo.retryTiers) {
      depth[`retry-${tier.delayMs}ms`] = (await channel.checkQueue(tier.queue)).messageCount;
    }
    const dlq = await channel.checkQueue(topo.deadLetterQueue);
    depth.dlq = dlq.messageCount;
    let oldestDeadLetterSeconds: number | undefined;
    // A quorum queue puts a letter given back (by a nack or a closed channel) behind the others:
    // a peek at its head would move the oldest letter to the back on every scrape.
    if (oldest && topo.queueType === "classic" && dlq.messageCount > 0 && dlq.consumerCount === 0) {
      const head = await channel.get(topo.deadLetterQueue, { noAck: false });
      if (head !== false) {
        const at = toDeadLetter(head).deadLetteredAt;
        channel.nack(head, false, true); // back to the head of a classic queue, where it was
        if (at !== undefined) oldestDeadLetterSeconds = (Date.now() - at.getTime()) / 1000;
      }
    }
    return { depth, workConsumers: work.consumerCount, oldestDeadLetterSeconds };
  } finally {
    await channel.close().catch(() => {});
  }
}

/** {@linkcode readQueueStats}, asked at most once every `maxAgeMs`, for scrapes. */
export function cachedQueueStats(
  read: () => Promise<QueueStats> | undefined,
  maxAgeMs = 5_000,
): () => Promise<QueueStats | undefined> {
  let last: { at: number; stats: Promise<QueueStats | undefined> } | undefined;
  return () => {
    if (last === undefined || performance.now() - last.at > maxAgeMs) {
      last = {
        at: performance.now(),
        stats: Promise.resolve(read()).catch(() => undefined),
      };
    }
    return last.stats;
  };
}
