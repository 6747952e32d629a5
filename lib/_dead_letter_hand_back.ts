/**
 * How a pass over the dead-letter queue ends (_dead_letter_walk.ts walks it): what it still holds
 * given back, and a wait until the queue applied all it acked and gave back.
 *
 * How a pass ends. A quorum queue applies acks and put-backs asynchronously, and a channel that
 * closes while some are on their way loses them (RabbitMQ's quorum-queue client holds them back
 * once 32 commands are in flight, and forgets what it held when the channel goes): an acked letter
 * comes back. So a pass that acked anything puts back every letter it still holds itself, batch
 * by batch in order, and closes its channel only once the queue lists none of its consumers (a
 * quorum queue keeps a cancelled consumer until every letter it delivered is settled: that count
 * is what the queue applied). A pass that acked nothing gives its letters back by closing its
 * channel, then waits the same way: a pass after it counts them all. Either wait ends after
 * {@linkcode SETTLE_TIMEOUT_MS} (someone else's consumer that stays keeps the count up), with a
 * warning. (On a quorum queue every letter given back counts as a delivery in
 * `x-delivery-count`; the DLQ has no delivery limit.)
 *
 * @module
 */

import type { Channel, Message } from "amqplib";
import type { Broker } from "./broker.ts";
import { logger } from "./log.ts";

const log = logger("dlq");

/**
 * How long a pass waits, at most, once it is done, for the queue to apply what it acked and gave
 * back (30 s); past that it closes its channel all the same, with a warning.
 */
export const SETTLE_TIMEOUT_MS = 30_000;

/**
 * The most consumers whose letters a quorum queue of RabbitMQ before 4.3 gives back in order when
 * their channel closes (past 32, the order of its consumer map's keys is a hash's).
 */
export const ORDERED_CONSUMERS = 32;

/** A queue's counts, as `checkQueue` answers them. */
export interface QueueCounts {
  readonly messageCount: number;
  readonly consumerCount: number;
}

/**
 * Polls `queue` on `on` until `done` says yes; false once `deadline` (a `Date.now()`) has passed,
 * with a warning.
 */
export async function untilQueue(
  on: Channel,
  queue: string,
  deadline: number,
  done: (counts: QueueCounts) => boolean,
): Promise<boolean> {
  for (let pause = 1;; pause = Math.min(pause * 2, 50)) {
    if (done(await on.checkQueue(queue))) return true;
    if (Date.now() > deadline) {
      log.warn("the dead-letter queue did not settle in time; closing the pass all the same", {
        queue,
        timeoutMs: SETTLE_TIMEOUT_MS,
      });
      return false;
    }
    await new Promise((resolve) => setTimeout(resolve, pause));
  }
}

/** A pass as it ends: its channel, and what it still holds. */
export interface PassEnd {
  /** The pass's broker, for a channel to wait on once the pass's own is closed. */
  readonly broker: Broker;
  /** The pass's channel, closed by {@linkcode handBack}. */
  readonly channel: Channel;
  /** The dead-letter queue. */
  readonly queue: string;
  /**
   * The batches whose consumer still holds letters of theirs, in batch order: the delivery tag of
   * each one's last delivery.
   */
  readonly holding: readonly { readonly lastTag: number }[];
  /** The delivery tags the pass acked or put back. */
  readonly settled: ReadonlySet<number>;
  /** Whether the pass acked anything. */
  readonly acked: boolean;
  /**
   * Whether the broker gives a closed channel's letters back in consumer order however many
   * consumers there are (RabbitMQ 4.3 on).
   */
  readonly ordered: boolean;
  /** The queue's consumers when the pass began: the count it waits for. */
  readonly others: number;
}

/**
 * Gives back what the pass holds and waits until the queue applied all it did (module doc),
 * then closes the channel. Never throws: a channel that closes meanwhile gives back the rest.
 */
export async function handBack(end: PassEnd): Promise<void> {
  const { broker, channel, queue, holding, settled, others } = end;
  const deadline = Date.now() + SETTLE_TIMEOUT_MS;
  const until = (on: Channel, done: (counts: QueueCounts) => boolean) =>
    untilQueue(on, queue, deadline, done);
  const byClosing = !end.acked && (end.ordered || holding.length <= ORDERED_CONSUMERS);
  try {
    if (!byClosing) {
      for (const [i, batch] of holding.entries()) {
        let tag = batch.lastTag;
        while (settled.has(tag)) tag--;
        channel.nack({ fields: { deliveryTag: tag } } as Message, true, true); // and those before
        // Batch after batch: a batch's letters go back once the batch before it is back.
        const after = holding.length - i - 1;
        if (after > 0) await until(channel, (counts) => counts.consumerCount <= others + after);
      }
      await until(channel, (counts) => counts.consumerCount <= others);
    }
  } catch {
    // The channel closed: what it held goes back.
  }
  await channel.close().catch(() => {});
  if (!byClosing || holding.length === 0) return;
  const probe = await broker.channel().catch(() => undefined);
  if (probe === undefined) return;
  try {
    await until(probe, (counts) => counts.consumerCount <= others);
  } catch {
    // The queue is gone, or the connection: nothing to wait for.
  } finally {
    await probe.close().catch(() => {});
  }
}
