/**
 * One pass over the dead-letter queue, for the operations of dead_letter_ops.ts: it walks the
 * queue front to back, keeps what it does not take unacknowledged until it ends, then gives that
 * back, and returns only once the broker applied all it did.
 *
 * A pass that acts (a replay, a purge) holds a bounded number of bytes. It asks the broker for
 * messages in batches (a consumer with a prefetch count, cancelled once it delivered that many,
 * then another), each batch as large as fits in what is left of `maxHeldBytes` at the largest
 * body seen so far (one message at first, then at most twice the batch before); it asks for no
 * more while the bodies it holds would not leave room for one more. A body that would take the
 * pass past the bound all the same (bodies grew within a batch) is not kept: it and what follows
 * it in its batch are put back (`basic.nack` with requeue, once the batch is cancelled), and the
 * next batch begins once the queue counts them again. So the bodies held never exceed
 * `maxHeldBytes`, except for a single body larger than that, which is held alone. A body is held
 * from its delivery until its visit settles. A batch's consumer delivers exactly its batch: the
 * acks of its messages wait until it is cancelled (an ack would let it deliver more, which a
 * quorum queue hands back on its own).
 *
 * A look (a listing, a dry run: a visitor that says `looksOnly`, whose visits are quick) asks for
 * every letter at once, one consumer per 65,535, and puts none back mid-pass: each body is let go
 * once looked at, so it holds what one read from the connection delivers (some 100 KB) or one
 * body, even where `maxHeldBytes` is set lower than that.
 *
 * How a pass ends (what it still holds given back, and a wait until the queue applied all it did)
 * is in _dead_letter_hand_back.ts.
 *
 * Where the letters go back. A classic queue puts each in its place. A quorum queue serves the
 * letters given back before the others; what a closed channel held goes back at the end of those,
 * consumer by consumer, each consumer's in order, where RabbitMQ before 4.3 keeps the consumers in
 * order only up to 32 of them; a letter put back on its own goes back at the end of those from
 * RabbitMQ 4.3 on, but behind every letter before it. So:
 * - a look leaves the queue as it found it: it takes every letter, in up to 32 consumers before
 *   RabbitMQ 4.3, where it refuses to begin (code `would_reorder`) on more than 2,097,120 letters
 *   (whatever the queue's type, which a pass cannot see).
 *   One stopped early (aborted, its channel closed) can leave the letters it took behind those it
 *   had not reached.
 * - a pass that acts keeps the order of the letters it leaves among themselves, and ahead of those
 *   that arrived meanwhile, except on a quorum queue of RabbitMQ before 4.3: there they go behind
 *   those, and a letter it put back mid-pass is taken again after those it had not reached.
 *
 * A pass ends with a {@linkcode DeadLetterPassError} when its channel closes (code
 * `channel_closed`) or the broker cancels its consumer (`cancelled`): whatever it had not acked
 * goes back to the queue.
 *
 * @module
 */

import amqp from "amqplib";
import type { Channel, ConsumeMessage, Message } from "amqplib";
import type { Broker } from "./broker.ts";
import {
  DeadLetterPassError,
  type DeadLetterScan,
  DEFAULT_MAX_HELD_BYTES,
  type Pass,
  type Visitor,
} from "./_dead_letter_pass.ts";
import {
  handBack,
  ORDERED_CONSUMERS,
  SETTLE_TIMEOUT_MS,
  untilQueue,
} from "./_dead_letter_hand_back.ts";
import { logger } from "./log.ts";
import { serverVersionAtLeast } from "./server_version.ts";
import type { Topology } from "./topology.ts";

const log = logger("dlq");

/** The largest prefetch count AMQP can carry (a 16-bit field). */
const MAX_CREDIT = 65_535;

/**
 * How often a batch that waits for letters asks whether the queue still has any (250 ms): the
 * letters counted when the pass began may have been removed by another operation meanwhile.
 */
const STARVED_CHECK_MS = 250;

/** Raised inside a pass when its channel closed; turned into a {@linkcode DeadLetterPassError}. */
class ChannelClosed {}

/** A batch: one consumer, asked for `credit` messages. */
interface Batch {
  /** Its consumer's tag: the pass's, then the batch's number, so that tags sort in batch order. */
  readonly tag: string;
  readonly credit: number;
  delivered: number;
  /** The delivery tag of its first delivery (those after are its, or a later batch's). */
  firstTag: number | undefined;
  /** The delivery tag of its last delivery so far (its tags run from `firstTag` to this one). */
  lastTag: number;
  /** Of its deliveries, how many the pass acked or put back. */
  settled: number;
  /** Acks of its messages, sent once its consumer is cancelled. */
  readonly acks: number[];
  /** Whether its consumer may still deliver. */
  active: boolean;
  /** Past the bound: this delivery and those after it go back. */
  deferring: boolean;
  readonly deferred: Pick<Message, "fields">[];
  readonly ended: PromiseWithResolvers<void>;
}

/**
 * Walks the dead-letter queue once, front to back, calling `visitor.visit` for each message that
 * was in it when the walk began (at most `within`), in order; returns how many that was, once the
 * broker applied what the pass acked and gave back. Messages nobody acked return to the queue
 * (where: see the module doc).
 *
 * @throws {DeadLetterPassError} when the channel closes under the pass or the broker cancels it,
 * or (`would_reorder`) before it began, when a look would change the queue's order.
 * @throws {RangeError} for a `maxHeldBytes` that is not a whole number of bytes from 1.
 * @throws whatever a visit or `finish` threw.
 */
export async function walkDeadLetters(
  broker: Broker,
  topo: Topology,
  scan: DeadLetterScan,
  visitor: Visitor,
): Promise<number> {
  const maxHeld = scan.maxHeldBytes ?? DEFAULT_MAX_HELD_BYTES;
  if (!Number.isSafeInteger(maxHeld) || maxHeld < 1) {
    throw new RangeError(`maxHeldBytes must be a whole number of bytes from 1, got ${maxHeld}`);
  }
  const { signal, onScan, onHeld } = scan;
  const queue = topo.deadLetterQueue;
  // From 4.3 a quorum queue gives a closed channel's letters back in consumer order, however
  // many consumers, and a letter put back on its own with the others given back (module doc).
  const ordered = serverVersionAtLeast(broker.serverVersion, "4.3");
  const channel: Channel = await broker.channel();
  let open = true;
  let stopped = false;
  let failure: unknown;
  const closed = Promise.withResolvers<never>();
  closed.promise.catch(() => {}); // raced by every wait below
  let roomWaiter: (() => void) | undefined;
  let batchEnd: (() => void) | undefined;
  const interrupt = () => {
    roomWaiter?.();
    batchEnd?.();
  };
  const stop = (error?: unknown) => {
    if (error !== undefined) failure ??= error;
    stopped = true;
    interrupt();
  };
  const onClose = () => {
    open = false;
    stopped = true;
    closed.reject(new ChannelClosed());
    interrupt();
  };
  channel.on("close", onClose);
  const onAbort = () => stop();
  signal?.addEventListener("abort", onAbort, { once: true });
  const race = <T>(promise: Promise<T> | T) => Promise.race([promise, closed.promise]);

  let total = 0;
  /** The queue's consumers when the pass began: the count it waits for at its end. */
  let others = 0;
  let seen = 0;
  let held = 0;
  let largest = 0;
  let credit = 0;
  const passTag = `dlq-pass-${crypto.randomUUID()}`;
  const visits = new Set<Promise<void>>();
  const batches: Batch[] = [];
  /** The delivery tags the pass acked or put back. */
  const settled = new Set<number>();
  let acked = 0;
  let current: Batch | undefined;
  /** The batch a delivery tag belongs to (their tags are consecutive, batch after batch). */
  const batchOf = (tag: number): Batch | undefined => {
    let [low, high, found] = [0, batches.length - 1, undefined as Batch | undefined];
    while (low <= high) {
      const middle = (low + high) >> 1;
      const first = batches[middle]!.firstTag;
      if (first !== undefined && first <= tag) [found, low] = [batches[middle], middle + 1];
      else high = middle - 1;
    }
    return found;
  };
  const settle = (tag: number) => {
    settled.add(tag);
    const batch = batchOf(tag);
    if (batch) batch.settled++;
  };
  /** The batches whose consumer still holds letters of theirs (on a quorum queue, a consumer). */
  const holding = () => batches.filter((b) => b.delivered > b.settled);
  const pass: Pass = {
    get total() {
      return total;
    },
    get active() {
      return open && !stopped;
    },
    ack(message) {
      if (!open) return false;
      const tag = message.fields.deliveryTag;
      if (settled.has(tag)) return true;
      settle(tag);
      acked++;
      if (current?.active && current.firstTag !== undefined && tag >= current.firstTag) {
        // An ack would let the consumer deliver past its batch: sent when the batch ends.
        current.acks.push(tag);
        return true;
      }
      try {
        channel.ack(message as Message);
        return true;
      } catch {
        return false; // closed meanwhile: it goes back to the queue
      }
    },
  };

  const deliver = (batch: Batch, message: ConsumeMessage | null) => {
    if (message === null) {
      stop(
        new DeadLetterPassError(
          `the broker cancelled the pass over ${queue} (was the queue deleted?)`,
          { code: "cancelled" },
        ),
      );
      return;
    }
    batch.delivered++;
    batch.firstTag ??= message.fields.deliveryTag;
    batch.lastTag = message.fields.deliveryTag;
    if (batch.deferring) {
      batch.deferred.push({ fields: message.fields });
      return;
    }
    if (stopped || seen >= total) {
      // Arrived after the walk began, or the pass is stopping: it stays where it is.
      if (batch.delivered >= batch.credit) batch.ended.resolve();
      return;
    }
    const size = message.content.byteLength;
    largest = Math.max(largest, size);
    if (!visitor.looksOnly && held > 0 && held + size > maxHeld) {
      // The bodies grew within the batch: this one and those after it go back, for the next.
      batch.deferring = true;
      batch.deferred.push({ fields: message.fields });
      batch.ended.resolve();
      return;
    }
    held += size;
    onHeld?.(held);
    seen++;
    try {
      onScan?.(seen, total);
    } catch (error) {
      stop(error);
    }
    const visit: Promise<void> = Promise.resolve()
      .then(() => visitor.visit(message, pass))
      .then(() => {}, (error: unknown) => stop(error))
      .finally(() => {
        visits.delete(visit);
        held -= size;
        onHeld?.(held);
        roomWaiter?.();
      });
    visits.add(visit);
    if (seen >= total || batch.delivered >= batch.credit) batch.ended.resolve();
  };

  /** Puts back what a batch deferred, and waits until the queue counts it again. */
  const putBack = async (batch: Batch): Promise<void> => {
    const before = await race(channel.checkQueue(queue));
    for (const message of batch.deferred) {
      channel.nack(message as Message, false, true);
      settle(message.fields.deliveryTag);
    }
    const back = before.messageCount + batch.deferred.length;
    const deadline = Date.now() + SETTLE_TIMEOUT_MS;
    await race(untilQueue(channel, queue, deadline, (counts) => counts.messageCount >= back));
  };

  /**
   * Resolves `true` when `batch` waits for letters the queue no longer has: nothing delivered
   * for a check, none ready in the queue, and no consumer but the pass's and those there when it
   * began that could give some back (or one that could, but nothing came for
   * {@linkcode SETTLE_TIMEOUT_MS}). Resolves `false` once `waiting()` says the batch ended.
   */
  const starved = async (batch: Batch, waiting: () => boolean): Promise<boolean> => {
    let delivered = batch.delivered;
    let idleSince = Date.now();
    while (true) {
      await new Promise((resolve) => setTimeout(resolve, STARVED_CHECK_MS));
      if (!waiting() || !open) return false;
      if (batch.delivered !== delivered) {
        [delivered, idleSince] = [batch.delivered, Date.now()];
        continue;
      }
      const counts = await channel.checkQueue(queue).catch(() => undefined);
      if (counts === undefined || !waiting()) return false; // the channel closed: raced as such
      if (counts.messageCount > 0) continue;
      const givesBack = counts.consumerCount > others + holding().length + 1;
      if (!givesBack || Date.now() - idleSince > SETTLE_TIMEOUT_MS) return true;
    }
  };

  /** Runs one batch: a consumer asked for `credit` messages, cancelled once it is done. */
  const runBatch = async (batch: Batch): Promise<void> => {
    batchEnd = () => batch.ended.resolve();
    current = batch;
    batches.push(batch);
    await race(channel.prefetch(batch.credit));
    await race(
      channel.consume(queue, (message) => deliver(batch, message), {
        noAck: false,
        consumerTag: batch.tag,
      }),
    );
    let waiting = true;
    try {
      const ended = batch.ended.promise.then(() => false);
      if (await race(Promise.race([ended, starved(batch, () => waiting)]))) {
        // Fewer letters than counted: the pass ends with those it walked.
        log.warning(
          "the dead-letter queue holds fewer letters than the pass counted; another " +
            "operation removed some meanwhile: the pass ends with those it walked",
          {
            queue,
            counted: total,
            walked: seen,
          },
        );
        total = seen;
      }
    } finally {
      waiting = false;
      batchEnd = undefined;
      if (open) await race(channel.cancel(batch.tag));
      batch.active = false;
      if (open) {
        for (const deliveryTag of batch.acks.splice(0)) {
          channel.ack({ fields: { deliveryTag } } as Message);
        }
      }
    }
    // Counted again before the next batch asks (where they go: the module doc).
    if (open && batch.deferred.length > 0) await putBack(batch);
  };

  let started = false;
  try {
    const counts = await race(channel.checkQueue(queue));
    total = Math.min(counts.messageCount, scan.within ?? Infinity);
    others = counts.consumerCount;
    started = true;
    if (visitor.looksOnly && !ordered && total > ORDERED_CONSUMERS * MAX_CREDIT) {
      throw new DeadLetterPassError(
        `a look at ${queue} refused to begin: its ${total} letters need more than ` +
          `${ORDERED_CONSUMERS} consumers of ${MAX_CREDIT}, and RabbitMQ ${broker.serverVersion} ` +
          `would then give a quorum queue's letters back out of order`,
        { code: "would_reorder" },
      );
    }
    while (seen < total && !stopped) {
      // Ask for more only with room for one more of the largest body yet.
      while (!stopped && held > 0 && held + largest > maxHeld) {
        await race(new Promise<void>((resolve) => roomWaiter = resolve));
        roomWaiter = undefined;
      }
      if (stopped) break;
      const fit = largest === 0 ? 1 : Math.max(1, Math.floor((maxHeld - held) / largest));
      credit = visitor.looksOnly
        ? Math.min(MAX_CREDIT, total - seen) // all at once: one consumer per 65,535 letters
        : Math.min(fit, credit === 0 ? 1 : credit * 2, MAX_CREDIT, total - seen);
      await runBatch({
        tag: `${passTag}-${String(batches.length).padStart(6, "0")}`,
        credit,
        firstTag: undefined,
        lastTag: 0,
        settled: 0,
        acks: [],
        active: true,
        delivered: 0,
        deferring: false,
        deferred: [],
        ended: Promise.withResolvers<void>(),
      });
    }
    while (visits.size > 0) await race(Promise.allSettled([...visits]));
    if (failure !== undefined) throw failure;
    if (!signal?.aborted) await race(visitor.finish?.(pass));
    return total;
  } catch (error) {
    if (!started) throw broker.explain(error); // the queue could not be counted: nothing began
    // amqplib refuses operations on a channel or connection that is closing or closed.
    const closing = error instanceof amqp.IllegalOperationError;
    if (error !== failure && (error instanceof ChannelClosed || closing || !open)) {
      const cause = error instanceof ChannelClosed ? broker.closeError : error;
      const reason = cause instanceof Error ? cause.message : undefined;
      throw new DeadLetterPassError(
        `the pass over ${queue} ended: its channel closed${reason ? ` (${reason})` : ""}; ` +
          "what it had not removed is back in the queue",
        { code: "channel_closed", cause },
      );
    }
    throw error;
  } finally {
    stopped = true;
    signal?.removeEventListener("abort", onAbort);
    // A pass that failed still lets its visits end before its channel closes.
    while (visits.size > 0) await Promise.allSettled([...visits]);
    try {
      await visitor.settle?.();
    } finally {
      channel.off("close", onClose);
      if (open) {
        // What it holds goes back, and the queue applies all it did (_dead_letter_hand_back.ts).
        await handBack({
          broker,
          channel,
          queue,
          holding: holding(),
          settled,
          acked: acked > 0,
          ordered,
          others,
        });
      }
    }
  }
}
