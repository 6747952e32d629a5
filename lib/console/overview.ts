/**
 * The console's overview: rates of created, retried and dead-lettered orders from OrdemDeProducao's
 * own /metrics (summed over its instances), the publish rate from the management API, the depth of
 * every queue and the work queue's consumers from the broker, the ledger's count of production
 * orders, the operator's pause: the fleet's state from the control plane, and how many of the
 * instances scraped hold off for it, and Estoque's outbox, read from its stock store as the doctor
 * reads it (lib/outbox_check.ts): the requests unsent, the oldest one's age and the publish lag of
 * those sent in the last minute. Each source may be missing; what it would give then shows as
 * unknown, with why.
 *
 * @module
 */

import type { Broker } from "../broker.ts";
import type { PauseState } from "../control.ts";
import type { LedgerReader } from "../ledger.ts";
import type { ManagementClient } from "../management.ts";
import type { OutboxReading } from "../outbox_check.ts";
import { readQueueStats } from "../queue_stats.ts";
import { describeError } from "../errors.ts";
import { type Buckets, bucketsBetween, histogramQuantile, readBuckets } from "./_histogram.ts";
import { redactUrl } from "../redact.ts";
import type { Topology } from "../topology.ts";

/** The counters the rates come from, by what they count. */
export const RATE_COUNTERS = {
  created: "productionorder_orders_created_total",
  retried: "productionorder_messages_retried_total",
  deadLettered: "productionorder_messages_dead_lettered_total",
} as const;

/** The gauge each instance sets to 1 while an operator's pause holds it. */
export const PAUSED_GAUGE = "productionorder_paused";

/** The histogram of the time from an order's publish to its production order or dead letter. */
export const CRITICAL_TIME_HISTOGRAM = "productionorder_critical_time_seconds";

/** How far back the overview's critical time looks: the orders settled in the last minute. */
export const CRITICAL_TIME_WINDOW_MS = 60_000;

/** The critical time of the orders settled lately, one way. */
export interface CriticalTime {
  /** Seconds; null when none settled. */
  readonly p50: number | null;
  readonly p99: number | null;
  /** How many settled. */
  readonly count: number;
}

/** How far back the overview's publish lag looks: the requests sent in the last minute. */
export const OUTBOX_LAG_WINDOW_MS = 60_000;

/** What the overview says when no stock store was given. */
export const NO_STOCK_STORE = "not configured (--stock-url / STOCK_URL)";

/**
 * Estoque's outbox as the overview shows it: read (`ok`), not configured (`off`: the console was
 * given no stock store), or not readable (`error`, and why, without a password).
 */
export type OutboxOverview =
  | { readonly state: "off" }
  | { readonly state: "error"; readonly error: string }
  | {
    readonly state: "ok";
    /** Requests not yet confirmed by the broker. */
    readonly depth: number;
    /** How long the oldest unsent request has waited, in seconds; null when none waits. */
    readonly oldestUnsentSeconds: number | null;
    /** The most failed publishes of any unsent request. */
    readonly maxAttempts: number;
    /**
     * From the movement to the broker's confirm, for the requests sent in the last
     * {@linkcode OUTBOX_LAG_WINDOW_MS}: seconds (null when none was sent), and how many.
     */
    readonly lag: {
      readonly p50: number | null;
      readonly p99: number | null;
      readonly count: number;
      readonly windowSeconds: number;
    };
  };

/** What the overview counts a rate of. */
export type Counted = keyof typeof RATE_COUNTERS;

/** One look at the flow. Numbers are null where their source could not be read. */
export interface Overview {
  /** When it was taken (ISO 8601). */
  readonly at: string;
  /** Messages a second: published (management API), created, retried, dead-lettered. */
  readonly rates: Readonly<Record<Counted | "published", number | null>>;
  /** Totals since the services started, summed over the instances scraped. */
  readonly totals: Readonly<Record<Counted, number | null>>;
  /** Ready messages by queue role: `work`, `retry-<ms>ms` for each tier, `dlq`. */
  readonly depth: Readonly<Record<string, number>> | null;
  /** Consumers of the work queue. */
  readonly consumers: number | null;
  /** Production orders in the ledger. */
  readonly ledgerOrders: number | null;
  /**
   * The critical time (Estoque's publish to the production order, or to the dead letter) of the
   * orders settled in the last {@linkcode CRITICAL_TIME_WINDOW_MS}, from every instance's
   * histogram; null without /metrics.
   */
  readonly criticalTime: {
    readonly created: CriticalTime;
    readonly deadLettered: CriticalTime;
    /** The seconds it covers (less than the window until the console has watched that long). */
    readonly windowSeconds: number;
  } | null;
  /** The operator's pause. */
  readonly pause: {
    /** The fleet's state: paused or not, since, by, why (null when it could not be read). */
    readonly state: PauseState | null;
    /** Instances whose /metrics answered. */
    readonly instances: number | null;
    /** Of those, how many hold off for the pause. */
    readonly paused: number | null;
  };
  /** Estoque's outbox, from its stock store. */
  readonly outbox: OutboxOverview;
  /** For each source, `ok` or why it could not be read (`stock`: not configured, said so). */
  readonly sources: Readonly<
    Record<"broker" | "metrics" | "management" | "ledger" | "control" | "stock", string>
  >;
}

/** Where the overview reads from. */
export interface OverviewSources {
  readonly broker: () => Promise<Broker>;
  readonly topology: Topology;
  /** OrdemDeProducao's /metrics URLs. */
  readonly metricsUrls: readonly string[];
  /** The management API, or undefined when turned off. */
  readonly management: ManagementClient | undefined;
  /** The ledger, or undefined when it cannot be opened (yet). */
  readonly ledger: () => Promise<LedgerReader | undefined>;
  /** The fleet's pause state (console/control.ts); undefined: not shown. */
  readonly pause?: () => Promise<PauseState>;
  /**
   * Estoque's outbox, the lag of the requests sent since the time given (lib/outbox_check.ts's
   * OutboxReader); undefined: no stock store configured.
   */
  readonly outbox?: (lagSince: Date) => Promise<OutboxReading>;
  /** A wall clock, for the outbox's ages. @default {() => new Date()} */
  readonly now?: () => Date;
  /** A clock in milliseconds. @default {performance.now} */
  readonly clock?: () => number;
}

/**
 * Sums each named metric's samples in a Prometheus text exposition (every label set of it).
 * Names not present are left out.
 */
export function sumMetrics(text: string, names: readonly string[]): Map<string, number> {
  const wanted = new Set(names);
  const sums = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const nameEnd = line.search(/[{\s]/);
    const name = nameEnd < 0 ? line : line.slice(0, nameEnd);
    if (!wanted.has(name)) continue;
    const value = Number(line.slice(line.lastIndexOf(" ") + 1));
    if (Number.isFinite(value)) sums.set(name, (sums.get(name) ?? 0) + value);
  }
  return sums;
}

/** The outbox as the overview shows it, from a reading taken at `now`. */
function outboxOverview(reading: OutboxReading, now: Date): OutboxOverview {
  const { stats, lag } = reading;
  const oldest = stats.oldestUnsentAt;
  return {
    state: "ok",
    depth: stats.depth,
    oldestUnsentSeconds: oldest === undefined
      ? null
      : Math.max(0, now.getTime() - oldest.getTime()) / 1000,
    maxAttempts: stats.maxAttempts,
    lag: { ...lag, windowSeconds: OUTBOX_LAG_WINDOW_MS / 1000 },
  };
}

/** Takes overviews; several viewers asking within a second share one. */
export class OverviewSampler {
  readonly #sources: OverviewSources;
  readonly #clock: () => number;
  #previous: { at: number; totals: Record<Counted, number | null> } | undefined;
  /** The critical-time buckets read lately, oldest first, back to the window. */
  readonly #criticalReadings: { at: number; created: Buckets; deadLettered: Buckets }[] = [];
  #latest: { at: number; overview: Promise<Overview> } | undefined;

  constructor(sources: OverviewSources) {
    this.#sources = sources;
    this.#clock = sources.clock ?? (() => performance.now());
  }

  /** An overview no older than `maxAgeMs`. */
  sample(maxAgeMs = 900): Promise<Overview> {
    const now = this.#clock();
    if (this.#latest === undefined || now - this.#latest.at > maxAgeMs) {
      this.#latest = { at: now, overview: this.#take(now) };
    }
    return this.#latest.overview;
  }

  async #take(now: number): Promise<Overview> {
    const s = this.#sources;
    const wallNow = s.now?.() ?? new Date();
    const [metrics, queues, publishRate, ledger, pause, outbox] = await Promise.allSettled([
      this.#scrape(),
      // Depths and consumers only: the overview shows no age, so the DLQ's head is left alone.
      s.broker().then((broker) => readQueueStats(broker, s.topology, { oldest: false })),
      s.management === undefined
        ? Promise.reject(new Error("off (--no-management)"))
        : s.management.publishRate(s.topology.exchange),
      s.ledger().then((reader) => {
        if (reader === undefined) throw new Error("not found");
        return reader.countOrders();
      }),
      s.pause === undefined ? Promise.reject(new Error("not read")) : s.pause(),
      s.outbox === undefined
        ? Promise.reject(new Error(NO_STOCK_STORE))
        : s.outbox(new Date(wallNow.getTime() - OUTBOX_LAG_WINDOW_MS)),
    ]);
    const why = (result: PromiseSettledResult<unknown>) =>
      result.status === "fulfilled" ? "ok" : redactUrl(describeError(result.reason));
    const scraped = metrics.status === "fulfilled" ? metrics.value : undefined;
    const totals = scraped?.totals ?? { created: null, retried: null, deadLettered: null };
    const previous = this.#previous;
    this.#previous = { at: now, totals };
    const criticalTime = scraped === undefined ? null : this.#criticalTime(now, scraped.texts);
    const rate = (name: Counted): number | null => {
      const before = previous?.totals[name];
      const after = totals[name];
      if (previous === undefined || before == null || after == null || now <= previous.at) {
        return null;
      }
      // A counter that went down is an instance that restarted: count from zero.
      const delta = after >= before ? after - before : after;
      return delta / ((now - previous.at) / 1000);
    };
    return {
      at: new Date().toISOString(),
      rates: {
        published: publishRate.status === "fulfilled" ? publishRate.value ?? null : null,
        created: rate("created"),
        retried: rate("retried"),
        deadLettered: rate("deadLettered"),
      },
      totals,
      depth: queues.status === "fulfilled" ? queues.value.depth : null,
      consumers: queues.status === "fulfilled" ? queues.value.workConsumers : null,
      ledgerOrders: ledger.status === "fulfilled" ? ledger.value : null,
      criticalTime,
      pause: {
        state: pause.status === "fulfilled" ? pause.value : null,
        instances: scraped?.instances ?? null,
        paused: scraped?.paused ?? null,
      },
      outbox: s.outbox === undefined
        ? { state: "off" }
        : outbox.status === "rejected"
        ? { state: "error", error: why(outbox) }
        : outboxOverview(outbox.value, wallNow),
      sources: {
        broker: why(queues),
        metrics: why(metrics),
        management: why(publishRate),
        ledger: why(ledger),
        control: why(pause),
        stock: why(outbox),
      },
    };
  }

  /**
   * The critical time of the orders settled since the oldest reading within the window: each
   * histogram's buckets summed over the instances now, less those of then.
   */
  #criticalTime(now: number, texts: string): NonNullable<Overview["criticalTime"]> {
    const reading = {
      at: now,
      created: readBuckets(texts, CRITICAL_TIME_HISTOGRAM, { outcome: "created" }),
      deadLettered: readBuckets(texts, CRITICAL_TIME_HISTOGRAM, { outcome: "dead-lettered" }),
    };
    const readings = this.#criticalReadings;
    readings.push(reading);
    while (readings.length > 1 && now - readings[1]!.at >= CRITICAL_TIME_WINDOW_MS) {
      readings.shift();
    }
    const first = readings[0]!;
    const of = (before: Buckets, after: Buckets): CriticalTime => {
      const between = first === reading ? after : bucketsBetween(before, after);
      return {
        p50: histogramQuantile(0.5, between),
        p99: histogramQuantile(0.99, between),
        count: between.at(-1)?.[1] ?? 0,
      };
    };
    return {
      created: of(first.created, reading.created),
      deadLettered: of(first.deadLettered, reading.deadLettered),
      windowSeconds: Math.round((now - first.at) / 1000),
    };
  }

  /**
   * The counters summed over every instance that answers, how many answered and how many of them
   * are paused; fails when none does.
   */
  async #scrape(): Promise<
    {
      totals: Record<Counted, number | null>;
      instances: number;
      paused: number;
      texts: string;
    }
  > {
    const names = [...Object.values(RATE_COUNTERS), PAUSED_GAUGE];
    const answers = await Promise.allSettled(this.#sources.metricsUrls.map(async (url) => {
      const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      if (!response.ok) {
        await response.body?.cancel();
        throw new Error(`${url} answered ${response.status}`);
      }
      const text = await response.text();
      return { sums: sumMetrics(text, names), text };
    }));
    const texts = answers.flatMap((a) => a.status === "fulfilled" ? [a.value.text] : []);
    const read = answers.flatMap((a) => a.status === "fulfilled" ? [a.value.sums] : []);
    if (read.length === 0) {
      const first = answers.find((a) => a.status === "rejected");
      throw new Error(
        `no /metrics endpoint answered (${this.#sources.metricsUrls.join(", ")})${
          first ? `: ${describeError(first.reason)}` : ""
        }`,
      );
    }
    const total = (name: string) => read.reduce((sum, sums) => sum + (sums.get(name) ?? 0), 0);
    return {
      totals: {
        created: total(RATE_COUNTERS.created),
        retried: total(RATE_COUNTERS.retried),
        deadLettered: total(RATE_COUNTERS.deadLettered),
      },
      instances: read.length,
      paused: total(PAUSED_GAUGE),
      texts: texts.join("\n"),
    };
  }
}
