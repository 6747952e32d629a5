/**
 * Estoque's Prometheus metrics (prom-client), for its stock service and its outbox relay:
 *
 * | metric | type | labels |
 * | --- | --- | --- |
 * | `estoque_outbox_depth` | gauge | |
 * | `estoque_outbox_oldest_unsent_age_seconds` | gauge | |
 * | `estoque_outbox_max_attempts` | gauge | |
 * | `estoque_outbox_publish_lag_seconds` | histogram | |
 * | `estoque_outbox_published_total` | counter | |
 * | `estoque_outbox_publish_failures_total` | counter | `code` (`returned`, `nacked`, `timeout`, `closed`) |
 * | `estoque_outbox_deleted_total` | counter | |
 * | `estoque_stock_movements_total` | counter | `outcome` (`applied`, `refused`) |
 * | `estoque_outbox_requests_total` | counter | |
 * | `estoque_broker_connected` | gauge | |
 * | `estoque_stock_store_available` | gauge | |
 *
 * The outbox gauges are read from the store at scrape time (every instance sees the same shared
 * outbox); the counters and the lag are this process's. The lag of a request runs from its
 * movement (its transaction's start) to the broker's confirm, by the clocks of the Estoque that moved the stock
 * and of the relay (the same on one host). Every series carries `instance_id`.
 *
 * @module
 */

import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { OutboxRow, OutboxStats } from "./stock_store.ts";

/** Options for {@linkcode OutboxMetrics}. */
export interface OutboxMetricsOptions {
  /** This process, added to every series as `instance_id`. */
  readonly instanceId: string;
  /** Read at scrape time: the outbox (undefined while the store cannot say; the gauges go). */
  readonly stats?: () => Promise<OutboxStats | undefined>;
  /** Read at scrape time: whether the relay's broker connection is open. */
  readonly connected?: () => boolean;
  /** Read at scrape time: whether the stock store takes work. */
  readonly storeAvailable?: () => boolean;
  /** The clock the oldest row's age is taken by. @default {Date.now} */
  readonly now?: () => number;
}

/** The lag buckets, in seconds: a few milliseconds when all is well, minutes during an outage. */
const LAG_BUCKETS = [
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
  30,
  60,
  300,
];

/** The metrics of one Estoque process, in their own registry. */
export class OutboxMetrics {
  /** The registry to serve. */
  readonly registry: Registry = new Registry();
  readonly #lag: Histogram;
  readonly #published: Counter;
  readonly #failures: Counter<"code">;
  readonly #deleted: Counter;
  readonly #movements: Counter<"outcome">;
  readonly #requests: Counter;

  /** Creates the metrics; the callbacks are read at each scrape. */
  constructor(options: OutboxMetricsOptions) {
    const registers = [this.registry];
    this.registry.setDefaultLabels({ instance_id: options.instanceId });
    const now = options.now ?? Date.now;
    // One read of the store per scrape, shared by the three gauges.
    let reading: Promise<OutboxStats | undefined> | undefined;
    const stats = () => {
      reading ??= (options.stats?.() ?? Promise.resolve(undefined)).catch(() => undefined)
        .finally(() => setTimeout(() => (reading = undefined), 0));
      return reading;
    };
    new Gauge({
      name: "estoque_outbox_depth",
      help: "Production-order requests in the outbox not yet confirmed by the broker.",
      registers,
      async collect() {
        this.reset();
        const s = await stats();
        if (s) this.set(s.depth);
      },
    });
    new Gauge({
      name: "estoque_outbox_oldest_unsent_age_seconds",
      help: "Seconds since the oldest unsent request was committed (0 when none waits).",
      registers,
      async collect() {
        this.reset();
        const s = await stats();
        if (s) {
          this.set(s.oldestUnsentAt ? Math.max(0, now() - s.oldestUnsentAt.getTime()) / 1000 : 0);
        }
      },
    });
    new Gauge({
      name: "estoque_outbox_max_attempts",
      help: "The most failed publishes of any unsent request (a stuck one keeps failing).",
      registers,
      async collect() {
        this.reset();
        const s = await stats();
        if (s) this.set(s.maxAttempts);
      },
    });
    this.#lag = new Histogram({
      name: "estoque_outbox_publish_lag_seconds",
      help:
        "From the start of a movement's transaction to the broker's confirm of the request it made.",
      buckets: LAG_BUCKETS,
      registers,
    });
    this.#published = new Counter({
      name: "estoque_outbox_published_total",
      help: "Requests the broker confirmed and this relay marked sent.",
      registers,
    });
    this.#failures = new Counter({
      name: "estoque_outbox_publish_failures_total",
      help: "Publishes of requests that failed (each is published again), by cause.",
      labelNames: ["code"],
      registers,
    });
    this.#deleted = new Counter({
      name: "estoque_outbox_deleted_total",
      help: "Sent requests deleted once their retention passed.",
      registers,
    });
    this.#movements = new Counter({
      name: "estoque_stock_movements_total",
      help: "Stock movements taken by this process, by outcome.",
      labelNames: ["outcome"],
      registers,
    });
    this.#requests = new Counter({
      name: "estoque_outbox_requests_total",
      help: "Production-order requests this process's movements put in the outbox.",
      registers,
    });
    const connected = options.connected ?? (() => false);
    new Gauge({
      name: "estoque_broker_connected",
      help: "1 while the relay's broker connection is open, else 0.",
      registers,
      collect() {
        this.set(connected() ? 1 : 0);
      },
    });
    const available = options.storeAvailable ?? (() => true);
    new Gauge({
      name: "estoque_stock_store_available",
      help: "1 while the stock store takes work, 0 while the relay is paused for it.",
      registers,
      collect() {
        this.set(available() ? 1 : 0);
      },
    });
  }

  /** Counts requests the broker confirmed at `at`, and their lag. */
  published(rows: readonly OutboxRow[], at: Date): void {
    for (const row of rows) {
      this.#lag.observe(Math.max(0, at.getTime() - row.createdAt.getTime()) / 1000);
    }
    this.#published.inc(rows.length);
  }

  /** Counts a failed publish. */
  failed(code: string): void {
    this.#failures.inc({ code });
  }

  /** Counts sent requests deleted. */
  deleted(count: number): void {
    this.#deleted.inc(count);
  }

  /** Counts a movement: applied (and whether it made a request), or refused. */
  moved(outcome: "applied" | "refused", request = false): void {
    this.#movements.inc({ outcome });
    if (request) this.#requests.inc();
  }
}
