/**
 * Publishing with publisher confirms: a publish resolves only once the broker has taken
 * responsibility for the message, and fails when it is nacked, returned as unroutable, or not
 * confirmed in time.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import type { ConfirmChannel, Message, Options } from "amqplib";

/** Why a publish failed. */
export type PublishFailure = "nacked" | "returned" | "timeout" | "closed";

/** A publish that the broker did not confirm. */
export class PublishError extends Error {
  /** What went wrong. */
  readonly code: PublishFailure;

  /** Creates a publish failure. */
  constructor(code: PublishFailure, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "PublishError";
    this.code = code;
  }
}

/** Options for {@linkcode ConfirmedPublisher}. */
export interface ConfirmedPublisherOptions {
  /**
   * How long to wait for a confirm before the publish fails with `timeout`, in milliseconds.
   * @default {10000}
   */
  timeoutMs?: number;
}

/** Message properties; `mandatory` makes an unroutable message fail with `returned`. */
export type PublishProperties = Options.Publish;

interface Pending {
  returned: string | undefined;
  readonly key: string;
}

function returnKey(exchange: string, routingKey: string, messageId: unknown): string {
  return `${exchange}\u0000${routingKey}\u0000${String(messageId ?? "")}`;
}

/**
 * Publishes over one confirm channel, any number of publishes in flight at once.
 *
 * A returned message is matched to its publish by exchange, routing key and message id: the
 * broker sends `basic.return` before the `basic.ack` of the same message.
 */
export class ConfirmedPublisher {
  readonly #channel: ConfirmChannel;
  readonly #timeoutMs: number;
  readonly #pendingByKey = new Map<string, Pending[]>();
  #drain: Promise<void> | undefined;
  #inFlight = 0;

  /** Wraps a confirm channel; the publisher listens to its `return` and `drain` events. */
  constructor(channel: ConfirmChannel, options: ConfirmedPublisherOptions = {}) {
    this.#channel = channel;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    channel.on("return", (message: Message) => {
      const { exchange, routingKey, replyText } = message.fields as Message["fields"] & {
        replyText?: string;
      };
      const key = returnKey(exchange, routingKey, message.properties.messageId);
      const pending = this.#pendingByKey.get(key)?.find((p) => p.returned === undefined);
      if (pending) pending.returned = replyText ?? "NO_ROUTE";
    });
  }

  /** How many publishes await their confirm. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /**
   * Publishes one message and resolves when the broker confirms it.
   *
   * @throws {PublishError} `nacked`, `returned` (mandatory and unroutable), `timeout` or
   * `closed` (the channel closed first; the broker may or may not have the message).
   */
  async publish(
    exchange: string,
    routingKey: string,
    body: Uint8Array,
    properties: PublishProperties = {},
  ): Promise<void> {
    while (this.#drain) await this.#drain;
    const key = returnKey(exchange, routingKey, properties.messageId);
    const pending: Pending = { returned: undefined, key };
    const queue = this.#pendingByKey.get(key);
    if (queue) queue.push(pending);
    else this.#pendingByKey.set(key, [pending]);
    this.#inFlight++;
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    let settled = false;
    const finish = (error?: PublishError) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      this.#inFlight--;
      const list = this.#pendingByKey.get(key);
      if (list) {
        list.splice(list.indexOf(pending), 1);
        if (list.length === 0) this.#pendingByKey.delete(key);
      }
      if (error) reject(error);
      else resolve();
    };
    const timer = setTimeout(() => {
      finish(
        new PublishError(
          "timeout",
          `no confirm from the broker within ${this.#timeoutMs} ms for a message to ${exchange}/${routingKey}`,
        ),
      );
    }, this.#timeoutMs);
    const content = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    let flowing: boolean;
    try {
      flowing = this.#channel.publish(exchange, routingKey, content, properties, (error) => {
        if (error) {
          const closed = error instanceof Error && /closed/i.test(error.message);
          finish(
            new PublishError(
              closed ? "closed" : "nacked",
              closed
                ? `the channel closed before the broker confirmed a message to ${exchange}/${routingKey}`
                : `the broker refused (nacked) a message to ${exchange}/${routingKey}`,
              { cause: error },
            ),
          );
        } else if (pending.returned !== undefined) {
          finish(
            new PublishError(
              "returned",
              `a message to ${exchange}/${routingKey} was returned as unroutable (${pending.returned})`,
            ),
          );
        } else {
          finish();
        }
      });
    } catch (error) {
      finish(
        new PublishError("closed", `cannot publish to ${exchange}/${routingKey}`, { cause: error }),
      );
      return promise;
    }
    if (!flowing && !this.#drain) {
      this.#drain = new Promise<void>((resolveDrain) => {
        this.#channel.once("drain", () => {
          this.#drain = undefined;
          resolveDrain();
        });
        this.#channel.once("close", () => {
          this.#drain = undefined;
          resolveDrain();
        });
      });
    }
    return promise;
  }
}
