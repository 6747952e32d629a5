/**
 * The work queue's consumer on the consumer's channel: started, cancelled while the ledger is
 * away (the broker then sends nothing more), and started again. Each start states the retry
 * settings this instance runs with, as a consumer argument the doctor reads.
 *
 * @module
 */

import type { Channel, ConsumeMessage } from "amqplib";

/** Consuming one queue on one channel, that can be cancelled and started again. */
export class Consumption {
  readonly #channel: Channel;
  readonly #queue: string;
  readonly #onMessage: (message: ConsumeMessage | null) => void;
  readonly #arguments: Record<string, unknown>;
  #tag: string | undefined;
  #starts = 0;

  /** Not consuming yet: call {@linkcode Consumption.start}. */
  constructor(
    channel: Channel,
    queue: string,
    onMessage: (message: ConsumeMessage | null) => void,
    consumerArguments: Record<string, unknown>,
  ) {
    this.#channel = channel;
    this.#queue = queue;
    this.#onMessage = onMessage;
    this.#arguments = consumerArguments;
  }

  /** Whether the broker is sending deliveries. */
  get active(): boolean {
    return this.#tag !== undefined;
  }

  /** How many times consuming started (each `consume-ok`). */
  get starts(): number {
    return this.#starts;
  }

  /** Starts consuming (manual acks). */
  async start(): Promise<void> {
    const { consumerTag } = await this.#channel.consume(this.#queue, this.#onMessage, {
      noAck: false,
      arguments: this.#arguments,
    });
    this.#tag = consumerTag;
    this.#starts++;
  }

  /** Stops the broker sending deliveries; those already sent stay to be settled. */
  async cancel(): Promise<void> {
    const tag = this.#tag;
    this.#tag = undefined;
    if (tag !== undefined) await this.#channel.cancel(tag).catch(() => {});
  }
}
