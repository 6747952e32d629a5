/**
 * Passing a failed delivery on: publishing its retry copy (to a retry tier, or to the delayed
 * exchange with `x-delay`) or its dead-letter copy, each with a publisher confirm, on a confirm
 * channel of its own that is replaced when the broker keeps refusing it. The consumer decides and
 * acks; the forwarder only publishes.
 *
 * @module
 */

import type { ConfirmChannel } from "amqplib";
import type { Broker } from "./broker.ts";
import type { Delivery } from "./delivery.ts";
import { logger } from "./log.ts";
import { ConfirmedPublisher, copyProperties, PublishError } from "./publisher.ts";
import { deadLetterHeaders, type FailureRecord, retryHeaders } from "./retry_headers.ts";
import { type DeadLetterReason, decideAfterRefusal, type RetryDecision } from "./retry_policy.ts";
import { describeError, errorCode, FatalError } from "./errors.ts";
import { endPublishSpanOn, startPublishSpan } from "./tracing.ts";
import { retryTierFor, type Topology } from "./topology.ts";

const log = logger("consumer");

/** A copy the broker took: what became of the delivery. */
export type PassedOn =
  | {
    readonly kind: "retried";
    readonly messageKey: string | undefined;
    /** The retry number this copy is (1 for the first retry). */
    readonly retry: number;
    /** How long the copy waits, in milliseconds (the tier's TTL on the TTL backend). */
    readonly delayMs: number;
    readonly error: string;
  }
  | {
    readonly kind: "dead-lettered";
    readonly messageKey: string | undefined;
    readonly reason: DeadLetterReason;
    readonly retries: number;
    readonly error: string;
  };

/**
 * Why a delivery failed, made once by the consumer and carried whole through the forwarder: what
 * the copy's headers record, and what log lines and outcomes say.
 */
export interface Failure extends FailureRecord {
  /** The error with its causes, as log lines and outcomes say it ({@linkcode describeError}). */
  readonly text: string;
  /** The error's `code` ({@linkcode errorCode}), which log lines carry as `code`. */
  readonly code: string | undefined;
}

/** The {@linkcode Failure} of `error`, delivered from `exchange` with `routingKey`. */
export function failureOf(
  error: unknown,
  fields: { readonly now: Date; readonly exchange: string; readonly routingKey: string },
  copyId?: string,
): Failure {
  return {
    error,
    text: describeError(error),
    code: errorCode(error),
    now: fields.now,
    exchange: fields.exchange,
    routingKey: fields.routingKey,
    ...(copyId !== undefined ? { copyId } : {}),
  };
}

/** A failure's `code` as a log line's field, or nothing when it has none. */
function codeOf(failure: Failure): { readonly code?: string } {
  return failure.code === undefined ? {} : { code: failure.code };
}

/** How {@linkcode Forwarder.passOnUntilTaken} waits and when it gives up. */
export interface PassOnOptions {
  /** How long to wait before publishing a refused copy again, by attempt (1 for the first). */
  readonly delay: (attempt: number) => number;
  /**
   * Whether the consumer is stopping (it stops on a rejected {@linkcode ForwarderOptions.ready}
   * too): then a refused copy is given up as `refused`.
   */
  readonly stopping: () => boolean;
}

/** Options for {@linkcode Forwarder.open}. */
export interface ForwarderOptions {
  readonly broker: Broker;
  readonly topology: Topology;
  /** How long to wait for a copy's confirm, in milliseconds. */
  readonly confirmTimeoutMs: number;
  /** Called when the confirm channel closes without being replaced. */
  readonly onLost: () => void;
  /**
   * Copies wait for this before they are published: after a reconnect, the topology's declare
   * beside the work (a retry queue found recreated with other settings must take no copy). A
   * rejection fails every copy with it, and {@linkcode Forwarder.passOnUntilTaken} gives each up
   * as `refused` at once (the consumer ends on the same failure: lib/consumer_options.ts
   * `topologyDeclared`).
   */
  readonly ready?: Promise<void>;
}

/** Publishes retry and dead-letter copies with confirms. */
export class Forwarder {
  readonly #options: ForwarderOptions;
  #channel: ConfirmChannel;
  #publisher: ConfirmedPublisher;
  #renewing: Promise<void> | undefined;
  /** {@linkcode ForwarderOptions.ready} until it resolved. */
  #ready: Promise<void> | undefined;

  private constructor(options: ForwarderOptions, channel: ConfirmChannel) {
    this.#options = options;
    this.#ready = options.ready;
    this.#ready?.then(() => (this.#ready = undefined), () => {});
    this.#channel = channel;
    this.#publisher = new ConfirmedPublisher(channel, { timeoutMs: options.confirmTimeoutMs });
    channel.on("close", options.onLost);
  }

  /** Opens the forwarder's confirm channel. */
  static async open(options: ForwarderOptions): Promise<Forwarder> {
    return new Forwarder(options, await options.broker.confirmChannel());
  }

  /**
   * Publishes the copy `decision` asks for: a retry, or a dead letter with its reason.
   *
   * @throws {PublishError} when the broker does not take it (nacked, timed out, returned as
   * unroutable, channel closed). A nack or a timeout first replaces the confirm channel, since
   * RabbitMQ 3.10 can go on refusing one channel's publishes after a quorum leader moved.
   */
  passOn(delivery: Delivery, failure: Failure, decision: RetryDecision): Promise<PassedOn> {
    // Promise chains rather than async functions here and below: every failed message comes
    // through, and each async frame is garbage the collector pays for.
    if (this.#ready !== undefined) {
      return this.#ready.then(() => this.passOn(delivery, failure, decision));
    }
    const publisher = this.#publisher;
    const published = decision.action === "retry"
      ? this.#publishRetry(delivery, failure, decision)
      : this.#publishDeadLetter(delivery, failure, decision.reason);
    return published.catch((error: unknown) => {
      if (
        error instanceof PublishError && (error.code === "nacked" || error.code === "timeout") &&
        publisher === this.#publisher
      ) {
        return this.#renew().catch(() => {}).then(() => {
          throw error;
        });
      }
      throw error;
    });
  }

  /**
   * {@linkcode Forwarder.passOn} until the broker takes the copy: a refused copy (a queue without
   * a leader, a node going down) is published again after `delay(attempt)`, while the original
   * stays unacknowledged (requeueing it instead would spend a quorum queue's delivery limit in
   * seconds); a retry copy that keeps coming back unroutable becomes a dead letter, as
   * {@linkcode decideAfterRefusal} says. Gives up with `refused` only when `stopping()`, or at once
   * when {@linkcode ForwarderOptions.ready} rejected.
   */
  passOnUntilTaken(
    delivery: Delivery,
    failure: Failure,
    first: RetryDecision,
    options: PassOnOptions,
  ): Promise<PassedOn | { readonly kind: "refused"; readonly error: string }> {
    return this.passOn(delivery, failure, first).catch((error: unknown) =>
      this.#passOnAgain(delivery, failure, first, options, error)
    );
  }

  /** The rest of {@linkcode Forwarder.passOnUntilTaken} once the first copy was refused. */
  async #passOnAgain(
    delivery: Delivery,
    firstFailure: Failure,
    first: RetryDecision,
    options: PassOnOptions,
    firstError: unknown,
  ): Promise<PassedOn | { readonly kind: "refused"; readonly error: string }> {
    let decision = first;
    let failure = firstFailure;
    let publishError = firstError;
    for (let attempt = 1;; attempt++) {
      // A failed declare beside the work (ForwarderOptions.ready) ends the session: no copy can
      // go out on it, so the original goes back to the queue now rather than after retries.
      if (options.stopping() || publishError instanceof FatalError) {
        return { kind: "refused", error: describeError(publishError) };
      }
      const refusal = publishError instanceof PublishError ? publishError.code : "closed";
      const next = decideAfterRefusal(decision, refusal, attempt);
      if (next !== decision) {
        // The retry copy keeps coming back unroutable: dead-letter it now, saying why.
        decision = next;
        failure = { ...failure, text: describeError(publishError), code: refusal };
      } else {
        const delayMs = options.delay(attempt);
        log.error("cannot pass a message on; trying again", {
          refCode: delivery.key,
          attempt,
          delayMs,
          error: describeError(publishError),
        });
        await new Promise((resolve) => setTimeout(resolve, delayMs));
      }
      try {
        return await this.passOn(delivery, failure, decision);
      } catch (error) {
        publishError = error;
      }
    }
  }

  async #publishRetry(
    delivery: Delivery,
    failure: Failure,
    decision: Extract<RetryDecision, { action: "retry" }>,
  ): Promise<PassedOn> {
    const { message } = delivery;
    const topo = this.#options.topology;
    let delayMs = decision.delayMs;
    if (topo.backend === "ttl") {
      const tier = retryTierFor(topo, delayMs);
      delayMs = tier.delayMs;
      const headers = retryHeaders(message.properties.headers, failure, decision.retry);
      await this.#publish(delivery, "", tier.queue, headers, true);
    } else {
      // The delayed-message exchange routes only when the delay is over, so it cannot honour
      // `mandatory`: it would return every delayed message.
      const headers = retryHeaders(message.properties.headers, failure, decision.retry, delayMs);
      await this.#publish(delivery, topo.exchange, topo.routingKey, headers, false);
    }
    log.info("retry scheduled", {
      refCode: delivery.key,
      retry: decision.retry,
      delayMs,
      ...codeOf(failure),
      error: failure.text,
    });
    return {
      kind: "retried",
      messageKey: delivery.key,
      retry: decision.retry,
      delayMs,
      error: failure.text,
    };
  }

  async #publishDeadLetter(
    delivery: Delivery,
    failure: Failure,
    reason: DeadLetterReason,
  ): Promise<PassedOn> {
    const { message, retries } = delivery;
    const topo = this.#options.topology;
    // A dead letter's x-last-error says the error with its causes.
    const headers = deadLetterHeaders(
      message.properties.headers,
      { ...failure, error: failure.text },
      retries,
      reason,
    );
    await this.#publish(delivery, topo.deadLetterExchange, topo.routingKey, headers, true);
    const error = failure.text;
    log.warning("dead-lettered", {
      refCode: delivery.key,
      reason,
      retries,
      ...codeOf(failure),
      error,
    });
    return { kind: "dead-lettered", messageKey: delivery.key, reason, retries, error };
  }

  /**
   * Publishes a copy of the delivery (its body and properties, with `headers`) inside the copy's
   * span (a child of the attempt's), whose context goes into the copy's headers, so the next
   * attempt or the dead letter continues the order's trace. The span names the queue for the
   * default exchange (`""`). `mandatory`: an unroutable copy fails as `returned`.
   */
  #publish(
    delivery: Delivery,
    exchange: string,
    routingKey: string,
    headers: Record<string, unknown>,
    mandatory: boolean,
  ): Promise<void> {
    const { message } = delivery;
    const span = startPublishSpan({
      operation: "publish",
      destination: exchange === "" ? routingKey : exchange,
      routingKey,
      messageId: message.properties.messageId,
      bodySize: message.content.byteLength,
      refCode: delivery.key,
      attempt: delivery.retries,
    }, headers);
    const properties = copyProperties(message.properties, headers, { mandatory });
    return endPublishSpanOn(
      span,
      this.#publisher.publish(exchange, routingKey, message.content, properties),
    );
  }

  /** Replaces the confirm channel; publishes still awaiting a confirm on the old one fail. */
  #renew(): Promise<void> {
    this.#renewing ??= (async () => {
      const old = this.#channel;
      const channel = await this.#options.broker.confirmChannel();
      channel.on("close", this.#options.onLost);
      old.off("close", this.#options.onLost);
      this.#channel = channel;
      this.#publisher = new ConfirmedPublisher(channel, {
        timeoutMs: this.#options.confirmTimeoutMs,
      });
      log.warning("opened a new channel for retry and dead-letter copies");
      await old.close().catch(() => {});
    })().finally(() => (this.#renewing = undefined));
    return this.#renewing;
  }

  /** Closes the confirm channel. */
  async close(): Promise<void> {
    await this.#channel.close().catch(() => {});
  }
}
