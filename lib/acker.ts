/**
 * Acknowledges deliveries in as few frames as it can: the settled deliveries at the front of the
 * channel's unacknowledged window go in one `basic.ack` with `multiple`, so a batch of messages
 * whose ledger transaction committed together costs one frame, not one each.
 *
 * `multiple` acknowledges every outstanding delivery up to a tag, so it is only used up to the
 * first delivery still being processed; settled ones behind it are acked one by one.
 *
 * @module
 */

import type { Channel, Message } from "amqplib";

interface Entry {
  readonly message: Message;
  /** `pending`: being processed; `ack`: to acknowledge; `done`: settled at the broker. */
  state: "pending" | "ack" | "done";
}

/** Batches the acknowledgements of one channel; see the module doc. */
export class Acker {
  readonly #channel: Channel;
  readonly #byTag = new Map<number, Entry>();
  #queue: Entry[] = [];
  #head = 0;
  #scheduled = false;

  /** Acknowledges on `channel`. */
  constructor(channel: Channel) {
    this.#channel = channel;
  }

  /** Registers a delivery, in delivery order, before it is processed. */
  delivered(message: Message): void {
    const entry: Entry = { message, state: "pending" };
    this.#byTag.set(message.fields.deliveryTag, entry);
    this.#queue.push(entry);
  }

  /** Marks a delivery for acknowledgement; the ack goes out at the end of this turn. */
  ack(message: Message): void {
    const entry = this.#byTag.get(message.fields.deliveryTag);
    if (!entry || entry.state !== "pending") return;
    entry.state = "ack";
    if (!this.#scheduled) {
      this.#scheduled = true;
      queueMicrotask(() => this.flush());
    }
  }

  /** Rejects a delivery at once, back to the queue when `requeue`. */
  nack(message: Message, requeue: boolean): void {
    const entry = this.#byTag.get(message.fields.deliveryTag);
    if (entry) entry.state = "done";
    try {
      this.#channel.nack(message, false, requeue);
    } catch {
      // The channel is closed: the broker requeues the delivery itself.
    }
    this.flush();
  }

  /** Sends the acknowledgements marked so far. */
  flush(): void {
    this.#scheduled = false;
    let last: Message | undefined;
    while (this.#head < this.#queue.length) {
      const entry = this.#queue[this.#head]!;
      if (entry.state === "pending") break;
      if (entry.state === "ack") last = entry.message;
      this.#byTag.delete(entry.message.fields.deliveryTag);
      this.#head++;
    }
    try {
      if (last) this.#channel.ack(last, true);
      for (let i = this.#head; i < this.#queue.length; i++) {
        const entry = this.#queue[i]!;
        if (entry.state === "ack") {
          this.#channel.ack(entry.message, false);
          entry.state = "done";
        }
      }
    } catch {
      // The channel is closed: the broker requeues what was not acknowledged.
    }
    if (this.#head > 1_024) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
  }
}
