/**
 * How many deliveries the consumer takes, and when it takes none: the work queue's consumption
 * with its prefetch, stopped while the ledger is away (the breaker), while an operator paused the
 * fleet (operator_pause.ts) or while the bodies held reach the byte budget (byte_budget.ts), grown
 * while bodies are small. Every start and cancel runs after the one before it, and each start
 * looks at all three reasons in its turn, so that a pause, a resume and a grown prefetch never
 * cross, and the end of one reason never undoes another (the ledger back does not end an
 * operator's pause, nor a resume an outage).
 *
 * @module
 */

import type { Channel, ConsumeMessage } from "amqplib";
import { ByteBudget } from "./byte_budget.ts";
import { Consumption } from "./consumption.ts";
import { logger } from "./log.ts";
import { settlesWithin } from "./settles_within.ts";

const log = logger("consumer");

/**
 * The broker did not answer a consumer's first start (its prefetch and `basic.consume`, on a new
 * channel) in time. Seen on RabbitMQ 4.3 after a partition: a channel opened on the majority
 * before the work queue's record names its new leader sends its consume to the cut-off one and
 * waits until the cluster takes that node for down (`net_ticktime`: 45-75 s by default); a channel
 * made later finds the new leader (docs/guarantees.md, Network partitions).
 */
export class ConsumeUnansweredError extends Error {
  /** Always `consume_unanswered`. */
  readonly code = "consume_unanswered";

  /** Creates the error for the consumer of `queue`, which waited `waitedMs`. */
  constructor(queue: string, waitedMs: number) {
    super(
      `the broker did not answer the consume on ${queue} in ${(waitedMs / 1000).toFixed(1)} s ` +
        `(on a quorum queue after a partition, the node may still name the old leader)`,
    );
    this.name = "ConsumeUnansweredError";
  }
}

/** Options for {@linkcode Intake}. */
export interface IntakeOptions {
  /** The consumer's channel: its prefetch is set here. */
  readonly channel: Channel;
  readonly queue: string;
  /** Called with each delivery (null when the broker cancelled the consumer). */
  readonly onMessage: (message: ConsumeMessage | null) => void;
  /** The consumer arguments each start states (the retry settings, for the doctor). */
  readonly consumerArguments: Record<string, unknown>;
  /** The largest prefetch. */
  readonly prefetch: number;
  /** The bytes of bodies held at most (byte_budget.ts). */
  readonly prefetchBytes: number;
  /** Turns a failed start into the error to throw (the broker's reason). */
  readonly explain: (error: unknown) => Error;
  /** Whether the consumer is stopping: then nothing starts again. */
  readonly stopping: () => boolean;
  /** Whether the ledger is away (the breaker is open): then nothing starts again. */
  readonly ledgerAway: () => boolean;
  /** Whether an operator paused the fleet: then nothing starts again. @default {() => false} */
  readonly held?: () => boolean;
  /** A start or cancel failed: the channel is broken. */
  readonly onBroken: () => void;
}

/** The consumer's consumption of the work queue, under the breaker and the byte budget. */
export class Intake {
  readonly #options: IntakeOptions;
  readonly #consumption: Consumption;
  readonly #budget: ByteBudget;
  /** Consumption stopped because the bodies held reached the byte budget. */
  #overBudget = false;
  /** Cancels and starts of consumption, one after the other. */
  #switching: Promise<void> = Promise.resolve();
  readonly #held: () => boolean;

  /** Not consuming yet: call {@linkcode Intake.start}. */
  constructor(options: IntakeOptions) {
    this.#options = options;
    this.#held = options.held ?? (() => false);
    this.#consumption = new Consumption(
      options.channel,
      options.queue,
      options.onMessage,
      options.consumerArguments,
    );
    this.#budget = new ByteBudget({
      limitBytes: options.prefetchBytes,
      prefetch: options.prefetch,
    });
  }

  /** Whether the broker is sending deliveries. */
  get active(): boolean {
    return this.#consumption.active;
  }

  /** How many times consuming started: paused (ledger, operator, byte budget) and resumed. */
  get starts(): number {
    return this.#consumption.starts;
  }

  /** Whether an operator paused the fleet (consumption is then stopped). */
  get held(): boolean {
    return this.#held();
  }

  /** Whether consumption stopped because the bodies held reached the byte budget. */
  get overBudget(): boolean {
    return this.#overBudget;
  }

  /** Bytes of bodies received and not yet settled. */
  get heldBytes(): number {
    return this.#budget.held;
  }

  /**
   * Sets the first prefetch (small, growing while bodies are small) and starts consuming, in the
   * switch's turn, so that a prefetch grown by the first deliveries waits for the start; while an
   * operator's pause holds, only sets the prefetch ({@linkcode Intake.resume} starts). With
   * `answerTimeoutMs` (0: none), a start the broker has not answered by then rejects with a
   * {@linkcode ConsumeUnansweredError}; the channel is then to be given up.
   */
  async start(answerTimeoutMs = 0): Promise<void> {
    const starting = (async () => {
      await this.#options.channel.prefetch(this.#budget.prefetchNow);
      if (!this.#held()) await this.#consume();
    })();
    this.#switching = starting.catch(() => {});
    if (answerTimeoutMs > 0 && !(await settlesWithin(starting, answerTimeoutMs))) {
      throw new ConsumeUnansweredError(this.#options.queue, answerTimeoutMs);
    }
    await starting;
  }

  /**
   * Stops taking deliveries (the ledger went away, an operator paused, or the consumer stops);
   * resolves once the broker confirmed the cancel. Deliveries already sent stay to be settled.
   */
  cancel(): Promise<void> {
    return this.#switch(() => this.#consumption.cancel());
  }

  /**
   * The ledger is back, or an operator resumed: take deliveries again, unless another reason
   * still says no (the ledger away, an operator's pause, the byte budget, stopping).
   */
  resume(): Promise<void> {
    return this.#switch(async () => {
      if (this.#blocked() || this.#overBudget || this.#consumption.active) return;
      // The prefetch the byte budget allows now: it may have shrunk while the breaker was open.
      await this.#options.channel.prefetch(this.#budget.prefetchNow);
      await this.#consume();
    });
  }

  /**
   * Resolves once the cancels and starts asked for so far are done (never rejects): a requeue
   * waits for it, since a nack the broker gets while this consumer still consumes brings the
   * message straight back to it.
   */
  settled(): Promise<void> {
    return this.#switching;
  }

  /** A delivery of `bytes` arrived: stop at the budget, or grow the prefetch after small ones. */
  taken(bytes: number): void {
    const verdict = this.#budget.take(bytes);
    if (verdict === "over") this.#stopForBytes();
    else if (verdict !== "ok") this.#growPrefetch();
  }

  /** A delivery of `bytes` settled: take deliveries again once half the budget is free. */
  given(bytes: number): void {
    if (this.#budget.give(bytes) && this.#overBudget) this.#resumeForBytes();
  }

  /** Whether a reason besides the byte budget keeps consumption stopped. */
  #blocked(): boolean {
    return this.#options.stopping() || this.#options.ledgerAway() || this.#held();
  }

  async #consume(): Promise<void> {
    try {
      await this.#consumption.start();
    } catch (error) {
      throw this.#options.explain(error);
    }
  }

  /** Runs a change of consumption after the ones before it; a broken channel is reported. */
  #switch(change: () => Promise<void>): Promise<void> {
    this.#switching = this.#switching.then(change).catch(() => this.#options.onBroken());
    return this.#switching;
  }

  /** The bodies held reached the byte budget: stop taking deliveries until half is settled. */
  #stopForBytes(): void {
    if (this.#overBudget || this.#options.stopping()) return;
    this.#overBudget = true;
    log.warning("bodies held reached the byte budget: taking no deliveries until some settle", {
      heldBytes: this.#budget.held,
      prefetchBytes: this.#options.prefetchBytes,
    });
    void this.#switch(() => this.#consumption.cancel());
  }

  /** Half the byte budget is free: take deliveries again, with a prefetch that fits the bodies. */
  #resumeForBytes(): void {
    this.#overBudget = false;
    const prefetch = this.#budget.resume();
    void this.#switch(async () => {
      if (this.#blocked() || this.#consumption.active) return;
      await this.#options.channel.prefetch(prefetch);
      await this.#consume();
      log.info("taking deliveries again", { prefetch });
    });
  }

  /** A full window of small bodies: consume with the larger prefetch the budget allows now. */
  #growPrefetch(): void {
    void this.#switch(async () => {
      if (this.#options.stopping() || this.#overBudget || !this.#consumption.active) return;
      await this.#consumption.cancel();
      // Deliveries sent before the cancel arrive during it and may reach the budget (or the
      // ledger may go, or an operator pause): then the consumer stays cancelled, as
      // #stopForBytes or a pause wants.
      if (this.#blocked() || this.#overBudget) return;
      const prefetch = this.#budget.prefetchNow;
      await this.#options.channel.prefetch(prefetch);
      await this.#consume();
      log.debug("prefetch grown", { prefetch });
    });
  }
}
