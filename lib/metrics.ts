/**
 * OrdemDeProducao's Prometheus metrics, built with prom-client.
 *
 * | metric | type | labels |
 * | --- | --- | --- |
 * | `productionorder_messages_consumed_total` | counter | |
 * | `productionorder_orders_created_total` | counter | |
 * | `productionorder_orders_duplicate_total` | counter | |
 * | `productionorder_messages_retried_total` | counter | `attempt` |
 * | `productionorder_messages_dead_lettered_total` | counter | `reason` |
 * | `productionorder_messages_skipped_total` | counter | |
 * | `productionorder_messages_requeued_total` | counter | |
 * | `productionorder_processing_duration_seconds` | histogram | `outcome` |
 * | `productionorder_critical_time_seconds` | histogram | `outcome` (`created`, `dead-lettered`) |
 * | `productionorder_messages_in_flight` | gauge | |
 * | `productionorder_broker_connected` | gauge | |
 * | `productionorder_broker_reconnects_total` | counter | |
 * | `productionorder_ledger_errors_total` | counter | |
 * | `productionorder_ledger_available` | gauge | |
 * | `productionorder_ledger_paused_seconds_total` | counter | |
 * | `productionorder_queue_messages` | gauge | `queue` (`work`, `dlq`, `retry-<ms>ms`) |
 * | `productionorder_queue_consumers` | gauge | `queue` (`work`) |
 * | `productionorder_dead_letter_oldest_age_seconds` | gauge | |
 * | `productionorder_paused` | gauge | |
 * | `productionorder_paused_since_timestamp_seconds` | gauge | `by`, `reason` (empty, and 0, when not paused) |
 *
 * Every series carries `instance_id`.
 *
 * @module
 */

import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { PauseState } from "./control.ts";
import type { LedgerEvent, Outcome } from "./outcome.ts";
import type { QueueStats } from "./queue_stats.ts";

/**
 * The buckets of the critical time, in seconds: 5 ms wide up to 100 ms (an order created on its
 * first run, its queueing included: a p99 read off them is within 5 ms), then around the default
 * retry schedule: created on the second run ~5 s after its publish (`5`–`5.5`), on the third
 * ~15 s after (`15`–`15.5`), where an exhausted order is dead-lettered too; and beyond, for
 * backlogs and pauses.
 */
export const CRITICAL_TIME_BUCKETS: readonly number[] = Object.freeze([
  ...Array.from({ length: 20 }, (_, i) => (i + 1) * 0.005),
  0.125,
  0.15,
  0.2,
  0.25,
  0.3,
  0.4,
  0.5,
  0.75,
  1,
  2,
  3,
  4,
  5,
  5.1,
  5.25,
  5.5,
  6,
  7.5,
  10,
  12.5,
  15,
  15.1,
  15.25,
  15.5,
  16,
  20,
  30,
  60,
  120,
  300,
  900,
  3600,
]);

/** Options for {@linkcode ConsumerMetrics}. */
export interface ConsumerMetricsOptions {
  /** The consumer instance, added to every series as `instance_id`. */
  readonly instanceId: string;
  /** Read at scrape time: deliveries being processed. */
  readonly inFlight?: () => number;
  /** Read at scrape time: whether the broker connection is open. */
  readonly connected?: () => boolean;
  /** Read at scrape time: queue depths and the oldest dead letter (undefined: leave them out). */
  readonly queues?: () => Promise<QueueStats | undefined>;
  /** Read at scrape time: the operator's pause as this instance applies it. */
  readonly pause?: () => PauseState;
}

/** The metrics of one consumer process, in their own registry. */
export class ConsumerMetrics {
  /** The registry to serve (`registry.metrics()` renders the text format). */
  readonly registry: Registry = new Registry();
  readonly #consumed: Counter;
  readonly #created: Counter;
  readonly #duplicate: Counter;
  readonly #retried: Counter<"attempt">;
  readonly #deadLettered: Counter<"reason">;
  readonly #skipped: Counter;
  readonly #requeued: Counter;
  readonly #duration: Histogram<"outcome">;
  readonly #critical: Histogram<"outcome">;
  /** Counts reconnects to the broker. */
  readonly reconnects: Counter;
  readonly #ledgerErrors: Counter;
  readonly #ledgerPaused: Counter;
  #ledgerAvailable = true;

  /** Creates the metrics; `inFlight` and `connected` are read at each scrape. */
  constructor(options: ConsumerMetricsOptions) {
    const registers = [this.registry];
    this.registry.setDefaultLabels({ instance_id: options.instanceId });
    const counter = (name: string, help: string) => new Counter({ name, help, registers });
    this.#consumed = counter(
      "productionorder_messages_consumed_total",
      "Deliveries settled (acked, or requeued).",
    );
    this.#created = counter("productionorder_orders_created_total", "Production orders created.");
    this.#duplicate = counter(
      "productionorder_orders_duplicate_total",
      "Deliveries of an order already in the ledger.",
    );
    this.#retried = new Counter({
      name: "productionorder_messages_retried_total",
      help: "Retry copies published, by retry number.",
      labelNames: ["attempt"],
      registers,
    });
    this.#deadLettered = new Counter({
      name: "productionorder_messages_dead_lettered_total",
      help: "Messages dead-lettered, by reason.",
      labelNames: ["reason"],
      registers,
    });
    this.#skipped = counter(
      "productionorder_messages_skipped_total",
      "Redelivered copies of a hop already passed on, dropped.",
    );
    this.#requeued = counter(
      "productionorder_messages_requeued_total",
      "Messages requeued because their retry or dead-letter publish failed.",
    );
    this.#duration = new Histogram({
      name: "productionorder_processing_duration_seconds",
      help: "Time from delivery to settlement, by outcome.",
      labelNames: ["outcome"],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    this.#critical = new Histogram({
      name: "productionorder_critical_time_seconds",
      help:
        "Time from an order's publish by Estoque to its production order, or to its dead-lettering: queued, retries and processing included.",
      labelNames: ["outcome"],
      buckets: [...CRITICAL_TIME_BUCKETS],
      registers,
    });
    const inFlight = options.inFlight ?? (() => 0);
    new Gauge({
      name: "productionorder_messages_in_flight",
      help: "Deliveries being processed.",
      registers,
      collect() {
        this.set(inFlight());
      },
    });
    const connected = options.connected ?? (() => false);
    new Gauge({
      name: "productionorder_broker_connected",
      help: "1 while the broker connection is open, else 0.",
      registers,
      collect() {
        this.set(connected() ? 1 : 0);
      },
    });
    this.reconnects = counter(
      "productionorder_broker_reconnects_total",
      "Reconnections to the broker after a lost connection.",
    );
    this.#ledgerErrors = counter(
      "productionorder_ledger_errors_total",
      "Ledger operations that failed because the ledger was unavailable.",
    );
    // deno-lint-ignore no-this-alias -- read by the gauge's and the counter's collect()
    const self = this;
    new Gauge({
      name: "productionorder_ledger_available",
      help: "1 while the ledger takes work, 0 while consumption is paused for it.",
      registers,
      collect() {
        this.set(self.#ledgerAvailable ? 1 : 0);
      },
    });
    const queues = options.queues ?? (() => Promise.resolve(undefined));
    new Gauge({
      name: "productionorder_queue_messages",
      help: "Ready messages in the work queue, each retry tier and the DLQ, as the broker says.",
      labelNames: ["queue"],
      registers,
      async collect() {
        this.reset();
        const stats = await queues();
        for (const [queue, n] of Object.entries(stats?.depth ?? {})) this.set({ queue }, n);
      },
    });
    new Gauge({
      name: "productionorder_queue_consumers",
      help: "Consumers of the work queue, every instance's included.",
      labelNames: ["queue"],
      registers,
      async collect() {
        this.reset();
        const stats = await queues();
        if (stats) this.set({ queue: "work" }, stats.workConsumers);
      },
    });
    new Gauge({
      name: "productionorder_dead_letter_oldest_age_seconds",
      help: "Seconds since the oldest dead letter in the DLQ was dead-lettered (0 when empty).",
      registers,
      async collect() {
        this.reset();
        const stats = await queues();
        if (stats === undefined) return;
        if (stats.depth.dlq === 0) this.set(0);
        else if (stats.oldestDeadLetterSeconds !== undefined) {
          this.set(stats.oldestDeadLetterSeconds);
        }
      },
    });
    const pause = options.pause;
    new Gauge({
      name: "productionorder_paused",
      help: "1 while an operator's pause holds this instance (it takes no deliveries), else 0.",
      registers,
      collect() {
        this.set(pause?.().paused ? 1 : 0);
      },
    });
    new Gauge({
      name: "productionorder_paused_since_timestamp_seconds",
      help:
        "While paused by an operator: when the pause began (Unix time), with who paused and why; 0 otherwise.",
      labelNames: ["by", "reason"],
      registers,
      collect() {
        this.reset();
        const state = pause?.();
        if (!state?.paused) {
          this.set({ by: "", reason: "" }, 0);
          return;
        }
        const since = Date.parse(state.since ?? "");
        this.set(
          { by: state.by ?? "", reason: state.reason ?? "" },
          Number.isFinite(since) ? since / 1000 : 0,
        );
      },
    });
    this.#ledgerPaused = new Counter({
      name: "productionorder_ledger_paused_seconds_total",
      help:
        "Time consumption was paused because the ledger was unavailable (added when it is back).",
      registers,
    });
  }

  /** Follows the consumer's ledger; pass it as the consumer's `onLedger`. */
  readonly observeLedger = (event: LedgerEvent): void => {
    switch (event.kind) {
      case "error":
        this.#ledgerErrors.inc();
        break;
      case "unavailable":
        this.#ledgerAvailable = false;
        break;
      case "back":
        this.#ledgerAvailable = true;
        this.#ledgerPaused.inc(event.unavailableMs / 1000);
        break;
    }
  };

  /** Observes an order's critical time; pass it as the consumer's `onCriticalTime`. */
  readonly observeCriticalTime = (outcome: "created" | "dead-lettered", ms: number): void => {
    this.#critical.observe({ outcome }, ms / 1000);
  };

  /** Counts one settled delivery; pass it as the consumer's `onOutcome`. */
  readonly observe = (outcome: Outcome, durationMs: number): void => {
    this.#consumed.inc();
    this.#duration.observe({ outcome: outcome.kind }, durationMs / 1000);
    switch (outcome.kind) {
      case "created":
        this.#created.inc();
        break;
      case "duplicate":
        this.#duplicate.inc();
        break;
      case "retried":
        this.#retried.inc({ attempt: String(outcome.retry) });
        break;
      case "dead-lettered":
        this.#deadLettered.inc({ reason: outcome.reason });
        break;
      case "skipped":
        this.#skipped.inc();
        break;
      case "requeued":
        this.#requeued.inc();
        break;
    }
  };
}
