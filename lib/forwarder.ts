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
import { describeError } from "./errors.ts";
import { endPublishSpan, startPublishSpan } from "./tracing.ts";
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

/** Options for {@linkcode Forwarder.open}. */
export interface ForwarderOptions {
  readonly broker: Broker;
  readonly topology: Topology;
  /** How long to wait for a copy's confirm, in milliseconds. */
  readonly confirmTimeoutMs: number;
  /** Called when the confirm channel closes without being replaced. */
  readonly onLost: () => void;
}

/** Publishes retry and dead-letter copies with confirms. */
export class Forwarder {
  readonly #options: ForwarderOptions;
  #channel: ConfirmChannel;
  #publisher: ConfirmedPublisher;
  #renewing: Promise<void> | undefined;

  private constructor(options: ForwarderOptions, channel: ConfirmChannel) {
    this.#options = options;
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
  async passOn(
    delivery: Delivery,
    failure: FailureRecord,
    decision: RetryDecision,
    errorText: string,
  ): Promise<PassedOn> {
    const publisher = this.#publisher;
    try {
      return decision.action === "retry"
        ? await this.#publishRetry(delivery, failure, decision, errorText)
        : await this.#publishDeadLetter(delivery, failure, decision.reason, errorText);
    } catch (error) {
      if (
        error instanceof PublishError && (error.code === "nacked" || error.code === "timeout") &&
        publisher === this.#publisher
      ) {
        await this.#renew().catch(() => {});
      }
      throw error;
    }
  }

  /**
   * {@linkcode Forwarder.passOn} until the broker takes the copy: a refused copy (a queue without
   * a leader, a node going down) is published again after `delay(attempt)`, while the original
   * stays unacknowledged (requeueing it instead would spend a quorum queue's delivery limit in
   * seconds); a retry copy that keeps coming back unroutable becomes a dead letter, as
   * {@linkcode decideAfterRefusal} says. Gives up only when `stopping()`, with `refused`.
   */
  async passOnUntilTaken(
    delivery: Delivery,
    failure: FailureRecord,
    first: RetryDecision,
    options: {
      readonly errorText: string;
      readonly delay: (attempt: number) => number;
      readonly stopping: () => boolean;
    },
  ): Promise<PassedOn | { readonly kind: "refused"; readonly error: string }> {
    let decision = first;
    let errorText = options.errorText;
    for (let attempt = 1;; attempt++) {
      try {
        return await this.passOn(delivery, failure, decision, errorText);
      } catch (publishError) {
        if (options.stopping()) return { kind: "refused", error: describeError(publishError) };
        const refusal = publishError instanceof PublishError ? publishError.code : "closed";
        const next = decideAfterRefusal(decision, refusal, attempt);
        if (next !== decision) {
          // The retry copy keeps coming back unroutable: dead-letter it now, saying why.
          decision = next;
          errorText = describeError(publishError);
          continue;
        }
        const delayMs = options.delay(attempt);
        log.error("cannot pass a message on; trying again", {
          refCode: delivery.key,
          attempt,
          delayMs,
          error: describeError(publishError),
        });
        await new Promise((resolve) => setTimeout(resolve, delayMs));
      }
    }
  }

  async #publishRetry(
    delivery: Delivery,
    failure: FailureRecord,
    decision: Extract<RetryDecision, { action: "retry" }>,
    errorText: string,
  ): Promise<PassedOn> {
    const { message } = delivery;
    const topo = this.#options.topology;
    let delayMs = decision.delayMs;
    if (topo.backend === "ttl") {
      const tier = retryTierFor(topo, delayMs);
      delayMs = tier.delayMs;
      const headers = retryHeaders(message.properties.headers, failure, decision.retry);
      await this.#traced(
        delivery,
        tier.queue,
        tier.queue,
        headers,
        () =>
          this.#publisher.publish("", tier.queue, message.content, {
            ...copyProperties(message.properties, headers),
            mandatory: true,
          }),
      );
    } else {
      // The delayed-message exchange routes only when the delay is over, so it cannot honour
      // `mandatory`: it would return every delayed message.
      const headers = retryHeaders(message.properties.headers, failure, decision.retry, delayMs);
      await this.#traced(
        delivery,
        topo.exchange,
        topo.routingKey,
        headers,
        () =>
          this.#publisher.publish(
            topo.exchange,
            topo.routingKey,
            message.content,
            copyProperties(message.properties, headers),
          ),
      );
    }
    log.info("retry scheduled", {
      refCode: delivery.key,
      retry: decision.retry,
      delayMs,
      error: errorText,
    });
    return {
      kind: "retried",
      messageKey: delivery.key,
      retry: decision.retry,
      delayMs,
      error: errorText,
    };
  }

  async #publishDeadLetter(
    delivery: Delivery,
    failure: FailureRecord,
    reason: DeadLetterReason,
    errorText: string,
  ): Promise<PassedOn> {
    const { message, retries } = delivery;
    const topo = this.#options.topology;
    const headers = deadLetterHeaders(
      message.properties.headers,
      { ...failure, error: errorText },
      retries,
      reason,
    );
    await this.#traced(
      delivery,
      topo.deadLetterExchange,
      topo.routingKey,
      headers,
      () =>
        this.#publisher.publish(topo.deadLetterExchange, topo.routingKey, message.content, {
          ...copyProperties(message.properties, headers),
          mandatory: true,
        }),
    );
    log.warning("dead-lettered", { refCode: delivery.key, reason, retries, error: errorText });
    return { kind: "dead-lettered", messageKey: delivery.key, reason, retries, error: errorText };
  }

  /**
   * Runs a copy's publish inside its span (a child of the attempt's), whose context goes into the
   * copy's headers, so the next attempt or the dead letter continues the order's trace.
   */
  async #traced(
    delivery: Delivery,
    destination: string,
    routingKey: string,
    headers: Record<string, unknown>,
    publish: () => Promise<void>,
  ): Promise<void> {
    const span = startPublishSpan({
      operation: "publish",
      destination,
      routingKey,
      messageId: delivery.message.properties.messageId,
      bodySize: delivery.message.content.byteLength,
      refCode: delivery.key,
      attempt: delivery.retries,
    }, headers);
    try {
      await publish();
      endPublishSpan(span);
    } catch (error) {
      endPublishSpan(span, error);
      throw error;
    }
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
