/**
 * What an expert amqplib user writes, which every raw side of the bench is built from: the
 * connections (a second one for publishing where the settings say so, writes coalesced where they
 * say so), acks batched into one `basic.ack` with `multiple` a turn, and a publisher that keeps a
 * bounded window of confirms and refills it in bursts (once half of it came back), not a message
 * per freed slot.
 *
 * @module
 */

import type { Buffer } from "node:buffer";
import type { Channel, ConfirmChannel, Message, Options } from "amqplib";
import { Broker } from "../lib/broker.ts";
import { AckWindow } from "./_ack_window.ts";
import type { Settings } from "./_settings.ts";

/** A connection of raw's, writing as `settings.writes` says. */
export function rawConnect(url: string, settings: Settings, name: string): Promise<Broker> {
  return Broker.connect(url, { name, coalesceWrites: settings.writes === "coalesced" });
}

/**
 * Runs `fn` with raw's connections: one to consume on, and one to publish on, which is the same
 * one unless `settings.connections` is 2. Both closed afterwards.
 */
export async function withRawConnections<T>(
  url: string,
  settings: Settings,
  fn: (consumer: Broker, publisher: Broker) => Promise<T>,
): Promise<T> {
  const consumer = await rawConnect(url, settings, "bench-raw");
  try {
    if (settings.connections === 1) return await fn(consumer, consumer);
    const publisher = await rawConnect(url, settings, "bench-raw-publisher");
    try {
      return await fn(consumer, publisher);
    } finally {
      await publisher.close();
    }
  } finally {
    await consumer.close();
  }
}

/**
 * Acknowledges a channel's deliveries in bulk: each settled delivery is marked, and at the end of
 * the turn one `basic.ack` with `multiple` covers every delivery up to the last one below which
 * all are settled.
 */
export class BatchedAcks {
  readonly #channel: Channel;
  readonly #window = new AckWindow();
  readonly #onAck: ((upTo: number) => void) | undefined;
  #scheduled = false;

  /** Acks on `channel`; `onAck` hears the tag of each ack sent, after it was written. */
  constructor(channel: Channel, onAck?: (upTo: number) => void) {
    this.#channel = channel;
    this.#onAck = onAck;
  }

  /** Marks `message` settled; its ack goes out at the end of this turn. */
  settle(message: Message): void {
    this.#window.settle(message.fields.deliveryTag);
    if (!this.#scheduled) {
      this.#scheduled = true;
      queueMicrotask(() => this.flush());
    }
  }

  /** Sends the ack due now, if any. */
  flush(): void {
    this.#scheduled = false;
    const upTo = this.#window.take();
    if (upTo === undefined) return;
    // amqplib acks by the message's delivery tag: a message-shaped record of the tag is enough.
    this.#channel.ack({ fields: { deliveryTag: upTo } } as Message, true);
    this.#onAck?.(upTo);
  }
}

/** One publish: where to, the body and its properties. */
export interface Publication {
  readonly exchange: string;
  readonly routingKey: string;
  readonly content: Buffer;
  readonly options: Options.Publish;
}

/**
 * Publishes `count` messages made by `make(i)` on `channel` with confirms, at most `window`
 * awaiting their confirm (0: no bound): once the window is full it waits until half of it is
 * confirmed and then refills it in one burst. Waits for the socket to drain when amqplib says so.
 * Resolves once every publish is confirmed.
 *
 * @throws {Error} when the broker refused any (a nack).
 */
export async function publishWindowed(
  channel: ConfirmChannel,
  count: number,
  make: (i: number) => Publication,
  window: number,
): Promise<void> {
  let inFlight = 0;
  let refused = 0;
  let room: (() => void) | undefined;
  const lowWater = Math.floor(window / 2);
  const confirmed = (error: unknown) => {
    inFlight--;
    if (error) refused++;
    if (room !== undefined && inFlight <= lowWater) {
      room();
      room = undefined;
    }
  };
  const drained = () => new Promise<void>((resolve) => channel.once("drain", () => resolve()));
  for (let i = 0; i < count; i++) {
    if (window > 0 && inFlight >= window) {
      await new Promise<void>((resolve) => room = resolve);
    }
    const p = make(i);
    inFlight++;
    if (!channel.publish(p.exchange, p.routingKey, p.content, p.options, confirmed)) {
      await drained();
    }
  }
  await channel.waitForConfirms();
  if (refused > 0) throw new Error(`the broker refused ${refused} of ${count} publishes`);
}
