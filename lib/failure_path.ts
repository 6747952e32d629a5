/**
 * The consumer's path for a delivery whose processing failed: dropped when it is a copy of ours
 * already passed on (a redelivered original after a crash between publish and ack, or a second
 * copy of a retry whose confirm was lost), else passed on (a retry or a dead letter, as the policy
 * decides) and acked once the broker confirmed the copy, its hop recorded in the ledger beside the
 * ack. A delivery that is not a copy of ours is never dropped (copy_identity.ts).
 *
 * @module
 */

import type { ConsumeMessage } from "amqplib";
import { copyIdFor, incomingCopyId, recordedHop } from "./copy_identity.ts";
import type { Delivery } from "./delivery.ts";
import { describeError, isLedgerUnavailable } from "./errors.ts";
import { failureOf, type Forwarder, type PassOnOptions } from "./forwarder.ts";
import { HopClaims } from "./hop_claims.ts";
import type { Ledger, LedgerResult, LedgerWrite } from "./ledger.ts";
import { logger } from "./log.ts";
import type { Outcome } from "./outcome.ts";
import { truncateError } from "./retry_headers.ts";
import { decideRetry, type RetryPolicy } from "./retry_policy.ts";

const log = logger("consumer");

/** What {@linkcode FailurePath} works with: the consumer's parts it shares. */
export interface FailurePathOptions {
  /** Where hops passed on are looked up. */
  readonly ledger: Ledger;
  readonly policy: RetryPolicy;
  /** Randomness for jitter, in [0, 1). */
  readonly random: () => number;
  /** A clock, for the history headers. */
  readonly now: () => Date;
  readonly forwarder: Forwarder;
  /** How a refused copy is published again. */
  readonly passOnOptions: PassOnOptions;
  /** Adds a write to the ledger's next batch. */
  readonly record: (write: LedgerWrite) => Promise<LedgerResult>;
  readonly ack: (message: ConsumeMessage) => void;
  /** Gives a delivery back to the queue, unchanged. */
  readonly requeue: (message: ConsumeMessage) => void | Promise<void>;
  /** The ledger is away: the delivery goes back and the consumer pauses. */
  readonly putBack: (delivery: Delivery, error: unknown) => Outcome | Promise<Outcome>;
  /** Opens the breaker for a ledger outage met on the way. */
  readonly trip: (error: unknown) => void;
  /** Called after a copy is confirmed, before the original is acked (fault-injection tests). */
  readonly beforeAck?: ((outcome: Outcome) => void | Promise<void>) | undefined;
}

/** Failed deliveries to their outcome: dropped as a copy passed on, retried or dead-lettered. */
export class FailurePath {
  readonly #options: FailurePathOptions;
  /** The message-and-hop keys being processed. */
  readonly #claims = new HopClaims();

  /** A path over the consumer's parts. */
  constructor(options: FailurePathOptions) {
    this.#options = options;
  }

  /**
   * A delivery whose processing failed with `error`: dropped when it is a copy of a message already
   * passed on, else passed on. Known by its key (the message id, or the RefCode in its body when it
   * has none: the Go services set none), its hop, and its `x-copy-id` (copy_identity.ts); a
   * delivery that is not a copy of ours is never dropped.
   */
  async fail(delivery: Delivery, error: unknown): Promise<Outcome> {
    const { key, message } = delivery;
    if (key === undefined) return await this.#passOn(delivery, error, undefined, undefined);
    const incoming = incomingCopyId(message);
    const copyId = copyIdFor(incoming, delivery.hop);
    // Not a copy of ours: never taken for one passed on (copy_identity.ts), recorded by its copy.
    if (incoming === undefined) {
      return await this.#passOn(delivery, error, recordedHop(delivery.hop, copyId), copyId);
    }
    const hop = recordedHop(delivery.hop, incoming);
    // One delivery of a message's hop at a time: a second copy in flight waits, then finds the
    // hop passed on and is dropped.
    const claimed = this.#claims.claim(key, hop);
    const release = typeof claimed === "function" ? claimed : await claimed;
    try {
      let forwarded = false;
      try {
        forwarded = await this.#options.ledger.wasForwarded(key, hop);
      } catch (ledgerError) {
        if (isLedgerUnavailable(ledgerError)) {
          return await this.#options.putBack(delivery, ledgerError);
        }
        // Not an outage: the message still moves on, with the reason it failed.
        log.warning("cannot look up whether a message was passed on", {
          refCode: key,
          error: describeError(ledgerError),
        });
      }
      if (forwarded) {
        this.#options.ack(delivery.message);
        log.info("dropped a copy already passed on", { refCode: key, hop });
        return { kind: "skipped", messageKey: key };
      }
      return await this.#passOn(delivery, error, hop, copyId);
    } finally {
      release();
    }
  }

  /**
   * Retries or dead-letters a failed delivery, as the policy decides, and acks it once the broker
   * has confirmed the copy. A copy the broker does not take (a queue without a leader, a node
   * going down) is published again after a growing delay while the original stays
   * unacknowledged: requeueing it instead would spend a quorum queue's delivery limit in seconds.
   * `hop` is the hop the pass-on is recorded under and `copyId` the copy's `x-copy-id`, both
   * undefined for a delivery without a key.
   */
  async #passOn(
    delivery: Delivery,
    error: unknown,
    hop: string | undefined,
    copyId: string | undefined,
  ): Promise<Outcome> {
    const options = this.#options;
    const { message, key } = delivery;
    const { exchange, routingKey } = message.fields;
    const failure = failureOf(error, { now: options.now(), exchange, routingKey }, copyId);
    const decision = decideRetry(options.policy, delivery.retries, error, options.random);
    const outcome = await options.forwarder.passOnUntilTaken(
      delivery,
      failure,
      decision,
      options.passOnOptions,
    );
    if (outcome.kind === "refused") {
      // The consumer stops meanwhile, or the topology's declare failed (it stops on that too):
      // the original goes back to the queue, unchanged.
      log.error("cannot pass a message on; requeued it", { refCode: key, error: outcome.error });
      await options.requeue(message);
      return { kind: "requeued", messageKey: key, error: outcome.error };
    }
    // Record the hop as passed on, so that a redelivered original of it is dropped. The record
    // is committed beside the ack rather than before it, which keeps the commit off the retry
    // path's latency: the original comes back only if the ack never reached the broker; if this
    // process lives on, the record commits within milliseconds, and if it died, the
    // record-then-ack order could have lost the record just the same (the copy made again then
    // carries the same x-copy-id, and the next consumer drops the second).
    const recorded = key === undefined || hop === undefined ? undefined : options.record({
      kind: "forward",
      messageKey: key,
      hop,
      outcome: outcome.kind,
      error: truncateError(outcome.error), // as the copy's x-last-error says it
      delayMs: outcome.kind === "retried" ? outcome.delayMs : undefined,
    }).catch((ledgerError: unknown) => {
      log.warning("cannot record a message as passed on", {
        refCode: key,
        error: describeError(ledgerError),
      });
      if (isLedgerUnavailable(ledgerError)) options.trip(ledgerError);
    });
    await options.beforeAck?.(outcome);
    options.ack(message);
    await recorded;
    return outcome;
  }
}
