/**
 * Publishing with publisher confirms: a publish resolves only once the broker has taken
 * responsibility for the message, and fails when it is nacked, returned as unroutable, or not
 * confirmed in time.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import type { ConfirmChannel, Message, MessageProperties, Options } from "amqplib";

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
   * How long to wait for a confirm before the publish fails with `timeout`, in milliseconds; the
   * publishes sent after it on the channel fail with it.
   * @default {10000}
   */
  timeoutMs?: number;
  /**
   * How long the publishes sent before the channel's first confirm wait for it, in
   * milliseconds, when it should be shorter than `timeoutMs`. On RabbitMQ 3.10 a channel whose
   * first publish to a quorum queue is made while its node still names a leader that a partition
   * cut off waits on that leader until the partition heals (docs/guarantees.md); a new connection
   * a few seconds later finds the new one. A healthy broker confirms a first publish within
   * milliseconds; one that is slow to (a quorum queue's disk, an election) times it out too,
   * and is sent the publish again.
   * @default {timeoutMs}
   */
  firstConfirmTimeoutMs?: number;
  /**
   * The channel's connection, to wait while the broker blocks publishing (a memory or disk
   * alarm): {@linkcode ConfirmedPublisher.writable} waits, and no publish times out meanwhile.
   */
  connection?: PublishGate;
}

/** What {@linkcode ConfirmedPublisher} needs to know of a connection's blocked state. */
export interface PublishGate {
  /** Whether the broker blocks publishing now. */
  readonly blocked: boolean;
  /** Resolves when publishing is no longer blocked. */
  whenUnblocked(): Promise<void>;
}

/** Message properties; `mandatory` makes an unroutable message fail with `returned`. */
export type PublishProperties = Options.Publish;

/**
 * The properties a copy of a message keeps (retry, dead letter, replay): content type and
 * encoding, message and correlation ids, timestamp, type and app id; made persistent, with the
 * given headers, and `mandatory` when asked. Expiration and priority are not carried: a copy must
 * not expire in a retry queue.
 */
export function copyProperties(
  original: MessageProperties,
  headers: Record<string, unknown>,
  options: { readonly mandatory?: boolean } = {},
): PublishProperties {
  const properties: PublishProperties = { persistent: true, headers };
  if (options.mandatory) properties.mandatory = true;
  if (original.contentType !== undefined) properties.contentType = original.contentType;
  if (original.contentEncoding !== undefined) {
    properties.contentEncoding = original.contentEncoding;
  }
  if (original.messageId !== undefined) properties.messageId = original.messageId;
  if (original.correlationId !== undefined) properties.correlationId = original.correlationId;
  if (original.timestamp !== undefined) properties.timestamp = original.timestamp;
  if (original.type !== undefined) properties.type = original.type;
  if (original.appId !== undefined) properties.appId = original.appId;
  return properties;
}

interface Pending {
  /** Set when the broker returned the message (mandatory and unroutable). */
  returned: string | undefined;
  /** The return-matching key; undefined when the publish is not mandatory. */
  readonly key: string | undefined;
  /** When the publish times out (`performance.now()` based). */
  deadline: number;
  /** Told once how the publish ended. */
  readonly done: (error?: PublishError) => void;
}

function returnKey(exchange: string, routingKey: string, messageId: unknown): string {
  return `${exchange}\u0000${routingKey}\u0000${String(messageId ?? "")}`;
}

/**
 * Publishes over one confirm channel, any number of publishes in flight at once.
 *
 * A returned message is matched to its publish by exchange, routing key and message id: the
 * broker sends `basic.return` before the `basic.ack` of the same message. Timeouts are checked by
 * one timer for all publishes, not one timer each. When the oldest publish is not confirmed in
 * time, every publish still awaiting its confirm fails with `timeout` at once: the channel is
 * taken for stuck, and what was sent behind it would otherwise wait out a timeout each (up to
 * twice the timeout in all for a steady publisher) before it could be sent again elsewhere.
 */
export class ConfirmedPublisher {
  readonly #channel: ConfirmChannel;
  readonly #timeoutMs: number;
  readonly #firstTimeoutMs: number;
  /** Whether the broker confirmed a publish on the channel yet. */
  #answered = false;
  /** Whether publishes timed out for want of the channel's first confirm. */
  #firstTimedOut = false;
  /** Mandatory publishes by return key: one, or those that share a key, oldest first. */
  readonly #pendingByKey = new Map<string, Pending | Pending[]>();
  /** Every publish awaiting its confirm, oldest first (so deadlines are in order). */
  readonly #pending = new Set<Pending>();
  #sweeper: ReturnType<typeof setInterval> | undefined;
  #drain: Promise<void> | undefined;
  readonly #gate: PublishGate | undefined;
  #paused = false;
  /** Whether the channel has closed: a publish it fails then is `closed`, not `nacked`. */
  #closed = false;

  /**
   * Wraps a confirm channel; the publisher listens to its `return`, `drain` and `close` events.
   */
  constructor(channel: ConfirmChannel, options: ConfirmedPublisherOptions = {}) {
    this.#channel = channel;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    const first = options.firstConfirmTimeoutMs;
    if (first !== undefined && !(first > 0)) {
      throw new RangeError(`firstConfirmTimeoutMs must be above 0, got ${first}`);
    }
    this.#firstTimeoutMs = Math.min(first ?? Infinity, this.#timeoutMs);
    this.#gate = options.connection;
    // amqplib fails a nacked publish and, from its own `close` listener, every unconfirmed one
    // alike, with a bare Error ("message nacked", "channel closed") that has no code: the
    // channel's state tells them apart. Prepended, so that it is known before those callbacks run.
    channel.prependListener("close", () => {
      this.#closed = true;
    });
    channel.on("return", (message: Message) => {
      const { exchange, routingKey, replyText } = message.fields as Message["fields"] & {
        replyText?: string;
      };
      const key = returnKey(exchange, routingKey, message.properties.messageId);
      const entry = this.#pendingByKey.get(key);
      const pending = Array.isArray(entry) ? entry.find((p) => p.returned === undefined) : entry;
      if (pending !== undefined && pending.returned === undefined) {
        pending.returned = replyText ?? "NO_ROUTE";
      }
    });
  }

  /**
   * Whether the broker confirmed a publish on the channel yet: until then, send few (a channel
   * stuck on a cut-off leader holds whatever is sent on it until the partition heals).
   */
  get answered(): boolean {
    return this.#answered;
  }

  /** Whether publishes timed out for want of the channel's first confirm (its shorter timeout). */
  get firstTimedOut(): boolean {
    return this.#firstTimedOut;
  }

  /** How many publishes await their confirm. */
  get inFlight(): number {
    return this.#pending.size;
  }

  /** Whether the broker blocks publishing on this publisher's connection. */
  get blocked(): boolean {
    return this.#gate?.blocked ?? false;
  }

  #sweep(): void {
    if (this.#gate?.blocked) {
      // A blocked connection is not read by the broker: confirms cannot come. The clock of every
      // publish starts again once the block lifts.
      if (!this.#paused) {
        this.#paused = true;
        this.#gate.whenUnblocked().then(() => {
          this.#paused = false;
          const deadline = performance.now() +
            (this.#answered ? this.#timeoutMs : this.#firstTimeoutMs);
          for (const pending of this.#pending) pending.deadline = deadline;
        });
      }
      return;
    }
    if (this.#paused) return;
    const oldest = this.#pending.values().next().value;
    if (oldest === undefined || oldest.deadline > performance.now()) return;
    // The oldest publish went unconfirmed for the whole timeout: the channel is taken for stuck
    // (a node cut off, its connection not yet known dead), and every publish behind it fails
    // with it now rather than each after its own timeout, so that they are sent again at once.
    const behind = this.#pending.size - 1;
    const first = !this.#answered && this.#firstTimeoutMs < this.#timeoutMs;
    if (first) this.#firstTimedOut = true;
    const message =
      (first
        ? `no first confirm on the channel from the broker within ${this.#firstTimeoutMs} ms`
        : `no confirm from the broker within ${this.#timeoutMs} ms`) +
      (behind > 0 ? ` (${behind} publishes behind it on the channel fail with it)` : "");
    for (const pending of [...this.#pending]) {
      this.#settle(pending, new PublishError("timeout", message));
    }
  }

  /**
   * The broker confirmed a publish on the channel: it works. Every publish still waiting was sent
   * before, with the first confirm's shorter timeout: each gets the whole one from its send (so a
   * burst sent before the first confirm is not timed out for being long).
   */
  #firstAnswer(): void {
    this.#answered = true;
    const extra = this.#timeoutMs - this.#firstTimeoutMs;
    if (extra <= 0) return;
    for (const pending of this.#pending) pending.deadline += extra;
  }

  /**
   * Ends `pending` once, with `error` or confirmed, and forgets it; a publish already ended (a
   * confirm after its timeout) is no longer in {@linkcode ConfirmedPublisher.#pending}.
   */
  #settle(pending: Pending, error?: PublishError): void {
    if (!this.#pending.delete(pending)) return;
    if (this.#pending.size === 0 && this.#sweeper !== undefined) {
      clearInterval(this.#sweeper);
      this.#sweeper = undefined;
    }
    const key = pending.key;
    if (key !== undefined) {
      const entry = this.#pendingByKey.get(key);
      if (entry === pending) this.#pendingByKey.delete(key);
      else if (Array.isArray(entry)) {
        entry.splice(entry.indexOf(pending), 1);
        if (entry.length === 0) this.#pendingByKey.delete(key);
      }
    }
    pending.done(error);
  }

  /**
   * Publishes one message and resolves when the broker confirms it.
   *
   * @throws {PublishError} `nacked`, `returned` (mandatory and unroutable), `timeout` or
   * `closed` (the channel closed first; the broker may or may not have the message).
   */
  publish(
    exchange: string,
    routingKey: string,
    body: Uint8Array,
    properties: PublishProperties = {},
  ): Promise<void> {
    // Not an async function: on the failure path every message publishes a copy, and an async
    // frame (its promise and state) per publish is garbage the collector pays for.
    if (this.#drain || this.#gate?.blocked) {
      return this.writable().then(() => this.publish(exchange, routingKey, body, properties));
    }
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    try {
      this.send(
        exchange,
        routingKey,
        body,
        properties,
        (error) => (error ? reject(error) : resolve()),
      );
    } catch (error) {
      return Promise.reject(error);
    }
    return promise;
  }

  /**
   * Resolves when the channel can take more publishes: at once, or after its `drain` event and
   * once the broker no longer blocks the connection. Call it before a burst of
   * {@linkcode ConfirmedPublisher.send}s.
   */
  async writable(): Promise<void> {
    if (this.#gate?.blocked) await this.#gate.whenUnblocked();
    if (this.#drain) await this.#drain;
  }

  /**
   * Publishes one message and calls `done` once the broker confirmed it (no error) or did not (a
   * {@linkcode PublishError}); `done` is called exactly once. The callback form costs no promise
   * per message, for bulk publishing. Returns false when the channel's buffer is full: await
   * {@linkcode ConfirmedPublisher.writable} before sending more.
   */
  send(
    exchange: string,
    routingKey: string,
    body: Uint8Array,
    properties: PublishProperties,
    done: (error?: PublishError) => void,
  ): boolean {
    const key = properties.mandatory
      ? returnKey(exchange, routingKey, properties.messageId)
      : undefined;
    // Plain data, settled by #settle: no closures of its own, one publish being thousands.
    const pending: Pending = {
      returned: undefined,
      key,
      deadline: performance.now() + (this.#answered ? this.#timeoutMs : this.#firstTimeoutMs),
      done,
    };
    this.#pending.add(pending);
    if (key !== undefined) {
      const entry = this.#pendingByKey.get(key);
      if (entry === undefined) this.#pendingByKey.set(key, pending);
      else if (Array.isArray(entry)) entry.push(pending);
      else this.#pendingByKey.set(key, [entry, pending]);
    }
    if (this.#sweeper === undefined) {
      this.#sweeper = setInterval(
        () => this.#sweep(),
        Math.min(1_000, Math.max(5, this.#firstTimeoutMs / 4)),
      );
    }
    const content = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    let flowing: boolean;
    try {
      flowing = this.#channel.publish(exchange, routingKey, content, properties, (error) => {
        // A nack does not count: a channel stuck on a cut-off leader can nack one publish and
        // hold the next.
        if (!error && !this.#answered) this.#firstAnswer();
        if (error) {
          const closed = this.#closed;
          this.#settle(
            pending,
            new PublishError(
              closed ? "closed" : "nacked",
              closed
                ? `the channel closed before the broker confirmed a message to ${exchange}/${routingKey}`
                : `the broker refused (nacked) a message to ${exchange}/${routingKey}`,
              { cause: error },
            ),
          );
        } else if (pending.returned !== undefined) {
          this.#settle(
            pending,
            new PublishError(
              "returned",
              `a message to ${exchange}/${routingKey} was returned as unroutable (${pending.returned})`,
            ),
          );
        } else {
          this.#settle(pending);
        }
      });
    } catch (error) {
      this.#settle(
        pending,
        new PublishError("closed", `cannot publish to ${exchange}/${routingKey}`, { cause: error }),
      );
      return true;
    }
    if (!flowing && !this.#drain) {
      this.#drain = new Promise<void>((resolveDrain) => {
        const release = () => {
          this.#channel.off("drain", release);
          this.#channel.off("close", release);
          this.#drain = undefined;
          resolveDrain();
        };
        this.#channel.on("drain", release);
        this.#channel.on("close", release);
      });
    }
    return flowing;
  }
}
