/**
 * OrdemDeProducao's consumer: turns each delivery into a production order, a delayed retry, or a
 * dead letter, and acknowledges it only once that outcome is durable.
 *
 * For each delivery, in order:
 * 1. read `x-retry-count`, `x-replay-count` and `x-delay` (ill-typed: dead-letter as `invalid`);
 * 2. validate the body (invalid: dead-letter at once as `invalid`);
 * 3. apply the business rule (quantity above the limit: transient failure);
 * 4. write the production order to the ledger (batched with its neighbours), then ack; a second
 *    copy of an order is a `duplicate` by its RefCode;
 * 5. a failing copy of ours is first checked against the hops already passed on: a copy passed on
 *    already (redelivered after a crash between publish and ack, or published twice) is dropped,
 *    known by its key, its hop and its `x-copy-id` (copy_identity.ts); any other message is
 *    passed on, never taken for another that shares its key and hop.
 *
 * A failure is retried through the retry backend until the policy gives up, then dead-lettered.
 * Retry and dead-letter copies are published with confirms (forwarder.ts) and the original is
 * acked only after the confirm; a copy the broker does not confirm is published again after a
 * growing delay (the original requeued only when the consumer stops meanwhile).
 *
 * @module
 */

import type { Channel, ConsumeMessage } from "amqplib";
import { Acker } from "./acker.ts";
import { Batcher } from "./batcher.ts";
import type { Breaker } from "./breaker.ts";
import { ledgerBreaker } from "./_ledger_breaker.ts";
import { describeError, isLedgerUnavailable } from "./errors.ts";
import { type Delivery, type ReadDelivery, readDelivery } from "./delivery.ts";
import { waitUntilDrained } from "./drain.ts";
import { settlesWithin } from "./settles_within.ts";
import { Forwarder } from "./forwarder.ts";
import { FailurePath } from "./failure_path.ts";
import { ConsumeUnansweredError, Intake } from "./intake.ts";
import {
  ConsumerStuckError,
  type FirstDeliveryWatch,
  watchFirstDelivery,
} from "./first_delivery_watch.ts";
import type { Outcome } from "./outcome.ts";
import type { LedgerResult, LedgerWrite } from "./ledger.ts";
import { logger } from "./log.ts";
import { OrderRule } from "./order_rule.ts";
import { publishedAtMs } from "./order_properties.ts";
import { policyTag, RETRY_POLICY_ARGUMENT } from "./retry_policy.ts";
import { backoffDelay } from "./backoff.ts";
import { childSpan, TRACING } from "./tracing.ts";
import { tracedAttempt } from "./_attempt_span.ts";
import {
  type ConsumerOptions,
  DEFAULT_COMMIT_BATCH,
  DEFAULT_FIRST_DELIVERY_TIMEOUT_MS,
  DEFAULT_PREFETCH,
  DEFAULT_PREFETCH_BYTES,
} from "./consumer_options.ts";

export { type ConsumerOptions, DEFAULT_PREFETCH, DEFAULT_PREFETCH_BYTES };

const log = logger("consumer");

/**
 * How long past a retry's delay {@linkcode OrderConsumer.drained} waits for the delayed exchange
 * to route it (1 s); the work queue must then be empty twice in a row as well.
 */
export const DELAYED_GRACE_MS = 1_000;

/** How long {@linkcode OrderConsumer.stop} waits at least for the broker to close its channels. */
export const CLOSE_GRACE_MS = 1_000;

/** A running consumer. Stop it with {@linkcode OrderConsumer.stop} or `await using`. */
export class OrderConsumer implements AsyncDisposable {
  readonly #options: ConsumerOptions;
  readonly #channel: Channel;
  readonly #forwarder: Forwarder;
  readonly #breaker: Breaker;
  readonly #batcher: Batcher<LedgerWrite, LedgerResult>;
  readonly #acker: Acker;
  readonly #idle = new Set<() => void>();
  readonly #rule: OrderRule;
  /** Taking deliveries, under the breaker and the byte budget. */
  readonly #intake: Intake;
  /** Where failed deliveries go. */
  readonly #failures: FailurePath;
  #inFlight = 0;
  #deliveries = 0;
  /** When the last retry this consumer scheduled in the delayed exchange is due (epoch ms). */
  #delayedUntil = 0;
  #stopping = false;
  /** The cancel sent when the consumer began to stop ({@linkcode OrderConsumer.stop}, `#end`). */
  #cancelling: Promise<void> | undefined;
  /** Stops following the operator's pause. */
  readonly #unfollow: () => void;
  /** Looks for a consumer sent nothing while its queue holds messages, until its first delivery. */
  #firstDelivery: FirstDeliveryWatch | undefined;
  /** Whether the consumer ended taken for stuck. */
  #stuck = false;
  /** Settles when the consumer stops: rejects if the broker ended it. */
  readonly done: Promise<void>;
  #finish!: (error?: Error) => void;

  private constructor(options: ConsumerOptions, channel: Channel, forwarder: Forwarder) {
    this.#options = options;
    this.#rule = new OrderRule(options.maxQuantity);
    this.#channel = channel;
    this.#forwarder = forwarder;
    this.#intake = new Intake({
      channel,
      queue: options.topology.queue,
      onMessage: (message) => this.#onDelivery(message),
      // Says which retry settings this consumer runs with, for the doctor.
      consumerArguments: { [RETRY_POLICY_ARGUMENT]: policyTag(options.policy) },
      prefetch: options.prefetch ?? DEFAULT_PREFETCH,
      prefetchBytes: options.prefetchBytes ?? DEFAULT_PREFETCH_BYTES,
      explain: (error) => options.broker.explain(error),
      stopping: () => this.#stopping,
      ledgerAway: () => this.#breaker.isOpen,
      held: () => options.pause?.paused ?? false,
      onBroken: () => this.#lost(),
    });
    this.#unfollow = options.pause?.onChange((paused) => this.#operatorPaused(paused)) ??
      (() => {});
    this.#breaker = ledgerBreaker(options, this.#intake);
    this.#acker = new Acker(channel);
    this.#batcher = new Batcher((writes) => options.ledger.commit(writes), {
      maxSize: options.batch?.maxSize ??
        Math.min(options.prefetch ?? DEFAULT_PREFETCH, DEFAULT_COMMIT_BATCH),
      maxDelayMs: options.batch?.maxDelayMs ?? 0,
      // A write the ledger refuses (not an outage) must not fail the orders committed beside it.
      isolate: (error) => !isLedgerUnavailable(error),
    });
    const random = options.random ?? Math.random;
    this.#failures = new FailurePath({
      ledger: options.ledger,
      policy: options.policy,
      random,
      now: options.now ?? (() => new Date()),
      forwarder,
      passOnOptions: {
        delay: options.passOnDelay ?? ((attempt) => backoffDelay(attempt, {}, random)),
        stopping: () => this.#stopping,
      },
      record: (write) => this.#batcher.add(write),
      ack: (message) => this.#ack(message),
      requeue: (message) => this.#requeue(message),
      putBack: (delivery, error) => this.#putBack(delivery, error),
      trip: (error) => this.#breaker.trip(error),
      beforeAck: options.beforeAck,
    });
    this.done = new Promise<void>((resolve, reject) => {
      this.#finish = (error) => (error ? reject(error) : resolve());
    });
    this.done.catch(() => {}); // observed through `done` by whoever awaits it
    channel.on("close", () => this.#lost());
    // Registered before any copy waits for it, so the consumer is stopping when they give up.
    options.topologyDeclared?.catch((error) => this.#end(error));
  }

  /**
   * The topology's declare beside the work failed (`topologyDeclared`): the consumer ends on it,
   * as a stop begins (no more deliveries; copies waiting for the declare are given up and their
   * originals requeued), and `done` rejects with it.
   */
  #end(error: unknown): void {
    if (this.#stopping) return;
    void this.#beginStop();
    this.#finish(error instanceof Error ? error : new Error(String(error)));
  }

  /**
   * Begins a stop, once: no longer following the pause, and the broker told to send no more
   * deliveries. Resolves when that cancel is done; at once if the channel was lost or the broker
   * cancelled the consumer (nothing to cancel).
   */
  #beginStop(): Promise<void> {
    if (!this.#stopping) {
      this.#stopping = true;
      this.#unfollow();
      this.#firstDelivery?.stop();
      this.#cancelling = this.#intake.cancel().catch(() => {});
    }
    return this.#cancelling ?? Promise.resolve();
  }

  /**
   * A channel closed under the consumer: it stops, and `done` rejects. When it was the copies'
   * channel, the consumer's own is still open and still consuming: the stop's cancel goes out, so
   * that what the consumer gives back now is not delivered to it again (on its own channel's
   * close the cancel fails at once, harmlessly).
   */
  #lost(): void {
    if (this.#stopping) return;
    void this.#beginStop();
    const { broker, topology } = this.#options;
    const reason = broker.closeError ?? new Error("the broker closed the channel");
    this.#finish(
      new Error(`consumer of ${topology.queue} lost its channel: ${reason.message}`, {
        cause: reason,
      }),
    );
  }

  /** Opens channels, sets the prefetch and starts consuming the topology's work queue. */
  static async start(options: ConsumerOptions): Promise<OrderConsumer> {
    const prefetch = options.prefetch ?? DEFAULT_PREFETCH;
    const channel = await options.broker.channel();
    // deno-lint-ignore prefer-const -- assigned once the forwarder it is handed to exists
    let consumer: OrderConsumer | undefined;
    const forwarder = await Forwarder.open({
      broker: options.broker,
      topology: options.topology,
      confirmTimeoutMs: options.confirmTimeoutMs ?? 10_000,
      onLost: () => {
        if (consumer !== undefined) consumer.#lost();
      },
      ...(options.topologyDeclared ? { ready: options.topologyDeclared } : {}),
    }).catch(async (error) => {
      await channel.close().catch(() => {});
      throw error;
    });
    consumer = new OrderConsumer(options, channel, forwarder);
    // Small at first, growing while bodies are small (byte_budget.ts). On a quorum queue a start
    // not answered in half the first-delivery timeout is given up (ConsumeUnansweredError).
    try {
      await consumer.#intake.start(consumer.#firstDeliveryTimeoutMs() / 2);
    } catch (error) {
      // No consumer to stop: let go of the pause it follows (it outlives this session) and of its
      // channels (a channel whose start went unanswered may not answer its close either).
      consumer.#stopping = true;
      consumer.#unfollow();
      const closing = Promise.all([channel.close().catch(() => {}), forwarder.close()]);
      if (error instanceof ConsumeUnansweredError) await settlesWithin(closing, CLOSE_GRACE_MS);
      else await closing;
      consumer.#finish();
      throw error;
    }
    consumer.#watchFirstDelivery();
    log.info("consuming", { queue: options.topology.queue, prefetch });
    return consumer;
  }

  /** The first-delivery timeout; 0 on a classic queue, which has no leader to move. */
  #firstDeliveryTimeoutMs(): number {
    return this.#options.topology.queueType === "quorum"
      ? this.#options.firstDeliveryTimeoutMs ?? DEFAULT_FIRST_DELIVERY_TIMEOUT_MS
      : 0;
  }

  /**
   * Watches, until the first delivery, for a consumer the broker sends nothing while the work
   * queue holds ready messages (first_delivery_watch.ts): taken for stuck, it stops as on a lost
   * channel, and `done` rejects with a {@linkcode ConsumerStuckError}, so that the service
   * consumes again on a new connection.
   */
  #watchFirstDelivery(): void {
    const { broker, topology, pause } = this.#options;
    this.#firstDelivery = watchFirstDelivery({
      timeoutMs: this.#firstDeliveryTimeoutMs(),
      deliveries: () => this.#deliveries,
      expecting: () => this.#intake.active && !this.#breaker.isOpen && !(pause?.paused),
      starts: () => this.#intake.starts,
      ended: () => this.#stopping,
      readyMessages: () => broker.messageCount(topology.queue),
      onStuck: (seen) => {
        if (this.#stopping) return;
        this.#stuck = true;
        const error = new ConsumerStuckError(topology.queue, seen);
        log.warning("consumer taken for stuck", { queue: topology.queue, ...seen });
        void this.#beginStop();
        this.#finish(error);
      },
    });
  }

  /**
   * An operator paused or resumed the fleet: stop taking deliveries (resolves once the broker
   * confirmed the cancel; those in flight finish), or take them again unless the ledger is away.
   */
  async #operatorPaused(paused: boolean): Promise<void> {
    if (this.#stopping) return;
    if (paused) {
      await this.#intake.cancel();
      log.info("consumption paused by an operator", { inFlight: this.#inFlight });
    } else {
      await this.#intake.resume();
      log.info("consumption resumed by an operator", {
        consuming: this.#intake.active,
        ledgerAway: this.#breaker.isOpen,
      });
    }
  }

  /**
   * Whether the consumer does what it is asked: started, not stopping, its channels open, its
   * ledger available, and consuming or paused (by an operator, or by its byte budget).
   */
  get ready(): boolean {
    return (this.#intake.active || this.#intake.overBudget || this.#intake.held) &&
      !this.#stopping && !this.#breaker.isOpen;
  }

  /** Whether the broker is sending this consumer deliveries now. */
  get consuming(): boolean {
    return this.#intake.active;
  }

  /** Bytes of bodies received and not yet settled. */
  get heldBytes(): number {
    return this.#intake.heldBytes;
  }

  /** Whether consumption is paused because the ledger is unavailable. */
  get paused(): boolean {
    return this.#breaker.isOpen;
  }

  /** Deliveries being processed now. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /**
   * Whether the consumer ended taken for stuck: sent nothing while its quorum queue held ready
   * messages ({@linkcode ConsumerStuckError}).
   */
  get stuck(): boolean {
    return this.#stuck;
  }

  /** Deliveries received since start. */
  get deliveries(): number {
    return this.#deliveries;
  }

  #onDelivery(message: ConsumeMessage | null): void {
    if (message === null) {
      // The broker cancelled the consumer (the queue was deleted, or a node went down).
      this.#firstDelivery?.stop();
      if (!this.#stopping) {
        this.#stopping = true;
        this.#finish(
          new Error(`the broker cancelled the consumer of ${this.#options.topology.queue}`),
        );
      }
      return;
    }
    this.#deliveries++;
    this.#inFlight++;
    this.#acker.delivered(message);
    this.#intake.taken(message.content.byteLength);
    this.#handle(message);
  }

  /**
   * Processes one delivery to its outcome, tells `onOutcome`, then counts the delivery done (no
   * promise chained on for that: one per delivery is garbage too).
   */
  async #handle(message: ConsumeMessage): Promise<void> {
    const started = performance.now();
    let outcome: Outcome | undefined;
    try {
      outcome = await this.#process(message);
    } catch (error) {
      // Only a broken channel gets here: the broker requeues the unacked message itself.
      log.error("cannot settle a delivery", { error: describeError(error) });
    }
    if (outcome?.kind === "retried" && this.#options.topology.backend === "plugin") {
      // Waits in the delayed exchange, which no queue counts: drained() waits for it.
      this.#delayedUntil = Math.max(this.#delayedUntil, Date.now() + outcome.delayMs);
    }
    try {
      if (outcome !== undefined) {
        this.#options.onOutcome?.(outcome, performance.now() - started);
        const critical = this.#options.onCriticalTime;
        if (critical && (outcome.kind === "created" || outcome.kind === "dead-lettered")) {
          const at = publishedAtMs(message.properties);
          // A publisher's clock ahead of ours would make it negative.
          if (at !== undefined) critical(outcome.kind, Math.max(0, Date.now() - at));
        }
      }
    } finally {
      this.#inFlight--;
      this.#intake.given(message.content.byteLength);
      if (this.#inFlight === 0) { for (const wake of this.#idle) wake(); }
    }
  }

  #process(message: ConsumeMessage): Promise<Outcome> {
    const read = readDelivery(message);
    // Without tracing, no span attributes and no wrapper around the attempt.
    if (!TRACING) return this.#processRead(read);
    return tracedAttempt(
      message,
      read,
      this.#options.topology.queue,
      (read) => this.#processRead(read),
    );
  }

  async #processRead(read: ReadDelivery): Promise<Outcome> {
    const { delivery, parsed } = read;
    const { message } = delivery;
    if (read.invalid !== undefined) return await this.#failures.fail(delivery, read.invalid);
    try {
      const order = this.#rule.check(parsed);
      if (order instanceof Error) return await this.#failures.fail(delivery, order);
      const attempt = delivery.retries;
      // No hop lookup on this path: a production order is written once by its RefCode whichever
      // copy brings it (a second is a `duplicate`), so only a copy that would be passed on again
      // needs to know whether its hop already was (#fail).
      const result = await childSpan(
        "ledger commit",
        () =>
          this.#batcher.add({
            kind: "order",
            order,
            attempt,
            extra: parsed.ok ? parsed.extra : undefined,
          }),
      );
      this.#ack(message);
      const kind = result === "created" ? "created" : "duplicate";
      // Properties built only when debug is on: this runs once per message.
      log.debug("production order", () => ({
        kind,
        refCode: order.refCode,
        quantity: order.quantity,
        attempt,
      }));
      return { kind, refCode: order.refCode, attempt };
    } catch (error) {
      if (isLedgerUnavailable(error)) return this.#putBack(delivery, error);
      return await this.#failures.fail(delivery, error);
    }
  }

  /**
   * The ledger could not take this delivery's work: an outage, not the message's failure. It goes
   * back to the queue unchanged (its retry budget untouched) and the breaker pauses consumption
   * until the ledger answers again.
   */
  async #putBack(delivery: Delivery, error: unknown): Promise<Outcome> {
    this.#options.onLedger?.({ kind: "error", error });
    this.#breaker.trip(error);
    await this.#requeue(delivery.message);
    return { kind: "requeued", messageKey: delivery.key, error: describeError(error) };
  }

  /**
   * Puts a delivery back in the queue once the cancels under way are done: a stop's cancel that
   * waits behind a prefetch switch's consume (intake.ts), or the cancel the breaker just sent. A
   * nack the broker gets while this consumer still consumes brings the message straight back to
   * it, a delivery spent against a quorum queue's delivery limit. A cancel that never completes
   * holds the delivery until the stop's timeout closes the channel, which requeues it too.
   */
  async #requeue(message: ConsumeMessage): Promise<void> {
    await this.#intake.settled();
    this.#acker.nack(message, true);
  }

  #ack(message: ConsumeMessage): void {
    this.#acker.ack(message);
  }

  /** Resolves when no delivery is being processed. */
  #whenIdle(): Promise<void> {
    if (this.#inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const wake = () => {
        this.#idle.delete(wake);
        resolve();
      };
      this.#idle.add(wake);
    });
  }

  /**
   * Resolves once the work queue and every retry tier are empty and nothing is in flight, seen
   * twice in a row `intervalMs` apart with no delivery in between; on the plugin backend, not
   * before the retries this consumer scheduled in the delayed exchange are due, plus
   * {@linkcode DELAYED_GRACE_MS}. For `--drain`, the demo and tests.
   */
  drained(options: { intervalMs?: number; signal?: AbortSignal } = {}): Promise<void> {
    const topo = this.#options.topology;
    return waitUntilDrained({
      broker: this.#options.broker,
      queues: [...topo.retryTiers.map((t) => t.queue), topo.queue],
      busy: () => this.#inFlight + this.#batcher.pending,
      deliveries: () => this.#deliveries,
      stopped: () => this.#stopping,
      notBefore: () => this.#delayedUntil === 0 ? 0 : this.#delayedUntil + DELAYED_GRACE_MS,
      ...options,
    });
  }

  /**
   * Stops consuming, lets in-flight deliveries finish (at most `timeoutMs`, the cancel's wait
   * included), and closes the channels. Deliveries still unfinished go back to the queue when the
   * channel closes. A broker that stops answering does not hold it: the channels' closes get
   * {@linkcode CLOSE_GRACE_MS} past the deadline, and what they leave is the connection's to end.
   */
  async stop(timeoutMs = 10_000): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    const left = () => deadline - performance.now();
    const wasStopping = this.#stopping;
    // A consumer that ended itself (#end), or a stop already under way, sent its cancel then:
    // this stop waits for that one.
    const cancelled = await settlesWithin(this.#beginStop(), left());
    const finished = cancelled && await settlesWithin(this.#whenIdle(), left());
    if (!finished) {
      log.warning("deliveries unfinished at shutdown; the broker requeues them", {
        count: this.#inFlight,
        timeoutMs,
        ...(cancelled ? {} : { cancelled: false }),
      });
    }
    const grace = Math.max(left(), CLOSE_GRACE_MS);
    const closed = await settlesWithin(
      Promise.all([this.#channel.close().catch(() => {}), this.#forwarder.close()]),
      grace,
    );
    if (!closed) log.warning("the broker did not answer the channels' close", { waitedMs: grace });
    if (!wasStopping) this.#finish();
  }

  /** Stops the consumer with the default timeout. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }
}
