/**
 * What {@linkcode OrderConsumer.start} takes (lib/consumer.ts), and the defaults of what it may
 * leave out.
 *
 * @module
 */

import type { BatcherOptions } from "./batcher.ts";
import type { Broker } from "./broker.ts";
import type { LedgerEvent, Outcome } from "./outcome.ts";
import type { Ledger } from "./ledger.ts";
import type { PauseSource } from "./operator_pause.ts";
import type { RetryPolicy } from "./retry_policy.ts";
import type { Topology } from "./topology.ts";

/** The bytes of bodies a consumer holds at most by default: 64 MiB. */
export const DEFAULT_PREFETCH_BYTES = 64 * 1024 * 1024;

/**
 * The prefetch when none is given: deep enough that deliveries keep arriving while a batch of them
 * commits: at 500 the window emptied while the ledger committed (docs/performance.md).
 */
export const DEFAULT_PREFETCH = 2_000;

/**
 * The most ledger writes one commit takes when none is given: while a commit runs, the deliveries
 * behind it keep arriving (the prefetch is deeper) and make the next one. Commits as deep as the
 * prefetch came with a commit p99 of 395 ms in the full run of docs/performance.md; no full run
 * has measured this cap yet.
 */
export const DEFAULT_COMMIT_BATCH = 500;

/**
 * How long a consumer may be sent nothing after it started consuming while its queue holds ready
 * messages (4 s): a consumer sends its first delivery within milliseconds on a queue with
 * messages; one that does not is on a channel that kept a quorum queue's old leader.
 */
export const DEFAULT_FIRST_DELIVERY_TIMEOUT_MS = 4_000;

/** Options for {@linkcode OrderConsumer.start}. */
export interface ConsumerOptions {
  /** The connection to consume on; the consumer opens its own channels on it. */
  readonly broker: Broker;
  /** The topology to consume from; declare it first. */
  readonly topology: Topology;
  /** Where production orders are written. */
  readonly ledger: Ledger;
  /** When to retry and when to give up. */
  readonly policy: RetryPolicy;
  /** Orders above this quantity fail with "maximum quantity exceeded". */
  readonly maxQuantity: number;
  /**
   * How many unacknowledged deliveries the broker may send at once. Ledger commits and acks are
   * batched, so a deep window keeps the pipeline full.
   * @default {DEFAULT_PREFETCH}
   */
  readonly prefetch?: number;
  /**
   * The bytes of bodies held at most, give or take what is on its way when it is reached: past
   * it the consumer stops taking deliveries until half is settled, then takes them with a
   * prefetch that fits the bodies it saw (byte_budget.ts).
   * @default {DEFAULT_PREFETCH_BYTES}
   */
  readonly prefetchBytes?: number;
  /**
   * How long to wait for the confirm of a retry or dead-letter copy, in milliseconds.
   * @default {10000}
   */
  readonly confirmTimeoutMs?: number;
  /**
   * On a quorum queue, how long the consumer may be sent nothing after it started consuming while
   * its queue holds ready messages, in milliseconds; then it is taken for stuck and `done`
   * rejects with a `ConsumerStuckError` (lib/first_delivery_watch.ts); a first start (prefetch and
   * consume) not answered within half of it makes `OrderConsumer.start` reject with a
   * `ConsumeUnansweredError` (lib/intake.ts). 0 turns both off; on a classic queue they are off.
   * (OrdemDeProducao doubles it after each session taken for stuck or not answered.)
   * @default {DEFAULT_FIRST_DELIVERY_TIMEOUT_MS}
   */
  readonly firstDeliveryTimeoutMs?: number;
  /**
   * How ledger writes are grouped into transactions.
   * @default {{ maxSize: the prefetch or DEFAULT_COMMIT_BATCH, whichever is less, maxDelayMs: 0 }}
   */
  readonly batch?: BatcherOptions;
  /** Randomness for jitter, in [0, 1). @default {Math.random} */
  readonly random?: () => number;
  /** A clock, for the history headers. @default {() => new Date()} */
  readonly now?: () => Date;
  /**
   * How long to wait before publishing a retry or dead-letter copy again after attempt `attempt`
   * failed, in milliseconds.
   * @default {backoffDelay: 250-500 ms, doubling up to 7.5-15 s}
   */
  readonly passOnDelay?: (attempt: number) => number;
  /** Called with every outcome and how long the delivery took, after it was settled. */
  readonly onOutcome?: (outcome: Outcome, durationMs: number) => void;
  /**
   * Called with the critical time of each order created or dead-lettered, once settled: from its
   * first publish (order_properties.ts `publishedAtMs`: Estoque's `x-published-at`, else the AMQP
   * timestamp) to now, in milliseconds, its time queued and in retry tiers included. Not called
   * for a message without a publish time (the Go Estoque's) or replayed from the DLQ.
   */
  readonly onCriticalTime?: (outcome: "created" | "dead-lettered", ms: number) => void;
  /**
   * Called after a retry or dead-letter copy is confirmed, before the original is acked.
   * Fault-injection tests use it to crash the consumer at exactly that point.
   */
  readonly beforeAck?: (outcome: Outcome) => void | Promise<void>;
  /** The ledger's name for log lines (a URL without its password). @default {"the ledger"} */
  readonly ledgerName?: string;
  /** Called on each ledger outage error, when the consumer pauses for one, and when it resumes. */
  readonly onLedger?: (event: LedgerEvent) => void;
  /** The delay before ledger probe `attempt` while paused. @default {breaker.ts PROBE_BACKOFF} */
  readonly probeDelay?: (attempt: number) => number;
  /**
   * An operator's pause (operator_pause.ts): while it holds, the consumer takes no deliveries
   * (it starts without consuming), and those it has finish.
   */
  readonly pause?: PauseSource;
  /**
   * Retry and dead-letter copies wait for this before they are published (after a reconnect, the
   * topology's declare beside the work: lib/declare_topology.ts `PreparedTopology.declared`). A
   * rejection ends the consumer: its `done` rejects with it, and the originals of the copies that
   * waited go back to the queue.
   */
  readonly topologyDeclared?: Promise<void>;
}
