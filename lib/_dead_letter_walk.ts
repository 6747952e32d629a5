/**
 * One pass over the dead-letter queue, for the operations of dead_letter_ops.ts: it walks the
 * queue front to back and keeps what it does not take unacknowledged until it ends, so that the
 * broker puts those messages back in their places when its channel closes.
 *
 * A pass holds a bounded number of bytes. It asks the broker for messages in batches (a consumer
 * with a prefetch count, cancelled once it delivered that many, then another), each batch as
 * large as fits in what is left of `maxHeldBytes` at the largest body seen so far (one message
 * at first, then at most twice the batch before); it asks for no more while the bodies it holds
 * would not leave room for one more. A body that would take the pass past the bound all the same
 * (bodies grew within a batch) is not kept: it and what follows it in its batch are put back in
 * their places (`basic.nack` with requeue, once the batch is cancelled) and taken again by the
 * next batch. So the bodies held never exceed `maxHeldBytes`, except for a single body larger
 * than that, which is held alone. A body is held from its delivery until its visit settles. (On
 * a quorum queue a put-back counts as a delivery attempt in `x-delivery-count`, as does every
 * message a pass leaves when its channel closes.)
 *
 * A batch's consumer delivers exactly its batch: the acks of its messages wait until it is
 * cancelled (an ack would let it deliver more, which a quorum queue hands back on its own). What
 * a closing channel leaves goes back in its place on a classic queue; a quorum queue returns it
 * consumer by consumer, in the order of their tags, which sort in batch order (for up to 32
 * batches; past that, the order of the batches may be shuffled, though nothing is lost).
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
import type { DeadLetterFilter } from "./dead_letters.ts";
import type { Topology } from "./topology.ts";

/**
 * The most bytes of dead letters' bodies a pass holds at once when nothing else is said (64 MiB).
 * An option for it would be `--max-held-mb` / `DLQ_MAX_HELD_MB` (and the console's likewise).
 */
export const DEFAULT_MAX_HELD_BYTES = 64 * 1024 * 1024;

/** The largest prefetch count AMQP can carry (a 16-bit field). */
const MAX_CREDIT = 65_535;

/** Options shared by the operations. */
export interface DeadLetterScan {
  /** Which dead letters. */
  readonly filter?: DeadLetterFilter;
  /** Act on at most this many matching dead letters (the rest are still counted). */
  readonly limit?: number;
  /**
   * Look at no more than the first this many messages of the queue: those a preview counted, so
   * that what arrived since is left alone.
   */
  readonly within?: number;
  /** Stops early when aborted; nothing is lost. */
  readonly signal?: AbortSignal;
  /** Called as the walk goes, with the messages seen so far and the queue's depth when it began. */
  readonly onScan?: (seen: number, total: number) => void;
  /**
   * The most bytes of bodies the pass holds at once (a single larger body is held alone).
   * @default {DEFAULT_MAX_HELD_BYTES}
   */
  readonly maxHeldBytes?: number;
  /** Called whenever the bytes of bodies the pass holds change, with the new figure. */
  readonly onHeld?: (bytes: number) => void;
}

/** What an operation found and did; every count is exact. */
export interface DeadLetterCounts {
  /** Dead letters in the queue when the operation began. */
  readonly total: number;
  /** Of those, the ones matching the filter. */
  readonly matched: number;
  /** Matching ones acted on (replayed, purged, listed), at most `limit`. */
  readonly done: number;
  /** Matching ones whose replay failed; they stay in the dead-letter queue. */
  readonly failed: number;
  /** Dead letters in the queue afterwards. */
  readonly left: number;
}

/** Why a pass ended before it was done. */
export type PassFailure = "channel_closed" | "cancelled";

/** A pass over the dead-letter queue that could not go on; what it had not acked is back in it. */
export class DeadLetterPassError extends Error {
  /** `channel_closed` (its channel or connection closed) or `cancelled` (by the broker). */
  readonly code: PassFailure;

  /** Creates the error of a pass that ended for `code`. */
  constructor(message: string, options: ErrorOptions & { code: PassFailure }) {
    super(message, options);
    this.name = "DeadLetterPassError";
    this.code = options.code;
  }
}

/** What a visitor may do with the pass. */
export interface Pass {
  /** The messages the pass walks (the queue's depth when it began, at most `within`). */
  readonly total: number;
  /** Whether the pass goes on: false once its channel closed, it failed, or it was aborted. */
  readonly active: boolean;
  /** Removes a message the pass took; false (it stays in the queue) when the channel closed. */
  ack(message: Pick<Message, "fields">): boolean;
}

/** What a pass does with the messages it walks. */
export interface Visitor {
  /**
   * Called for each message of the pass, in queue order; the pass holds the message's body until
   * what it returns settles. A visit that throws ends the pass with that error.
   */
  visit(message: ConsumeMessage, pass: Pass): void | Promise<void>;
  /** Runs once every visit settled, before the channel closes; not when the pass failed. */
  finish?(pass: Pass): Promise<void>;
  /** Runs before the channel closes, whether the pass succeeded or not (after every visit). */
  settle?(): Promise<void>;
}

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
 * was in it when the walk began (at most `within`), in order; returns how many that was.
 * Messages nobody acked return to the queue in their places.
 *
 * @throws {DeadLetterPassError} when the channel closes under the pass or the broker cancels it.
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
  let seen = 0;
  let held = 0;
  let largest = 0;
  let credit = 0;
  let batches = 0;
  const passTag = `dlq-pass-${crypto.randomUUID()}`;
  const visits = new Set<Promise<void>>();
  let current: Batch | undefined;
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
    if (held > 0 && held + size > maxHeld) {
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

  /** Runs one batch: a consumer asked for `credit` messages, cancelled once it is done. */
  const runBatch = async (batch: Batch): Promise<void> => {
    batchEnd = () => batch.ended.resolve();
    current = batch;
    await race(channel.prefetch(batch.credit));
    await race(
      channel.consume(queue, (message) => deliver(batch, message), {
        noAck: false,
        consumerTag: batch.tag,
      }),
    );
    try {
      await race(batch.ended.promise);
    } finally {
      batchEnd = undefined;
      if (open) await race(channel.cancel(batch.tag));
      batch.active = false;
      if (open) {
        for (const deliveryTag of batch.acks.splice(0)) {
          channel.ack({ fields: { deliveryTag } } as Message);
        }
        // Back in their places, ahead of what is still ready: the next batch takes them first.
        for (const message of batch.deferred) channel.nack(message as Message, false, true);
      }
    }
  };

  let started = false;
  try {
    total = Math.min((await race(channel.checkQueue(queue))).messageCount, scan.within ?? Infinity);
    started = true;
    while (seen < total && !stopped) {
      // Ask for more only with room for one more of the largest body yet.
      while (!stopped && held > 0 && held + largest > maxHeld) {
        await race(new Promise<void>((resolve) => roomWaiter = resolve));
        roomWaiter = undefined;
      }
      if (stopped) break;
      const fit = largest === 0 ? 1 : Math.max(1, Math.floor((maxHeld - held) / largest));
      credit = Math.min(fit, credit === 0 ? 1 : credit * 2, MAX_CREDIT, total - seen);
      await runBatch({
        tag: `${passTag}-${String(batches++).padStart(6, "0")}`,
        credit,
        firstTag: undefined,
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
      if (open) await channel.close().catch(() => {}); // what was not acked goes back
    }
  }
}
