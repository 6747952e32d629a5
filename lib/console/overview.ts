/**
 * The console's overview: rates of created, retried and dead-lettered orders from OrdemDeProducao's
 * own /metrics (summed over its instances), the publish rate from the management API, the depth of
 * every queue and the work queue's consumers from the broker, and the ledger's count of production
 * orders. Each source may be missing; what it would give then shows as unknown, with why.
 *
 * @module
 */

import type { Broker } from "../broker.ts";
import type { LedgerReader } from "../ledger.ts";
import type { ManagementClient } from "../management.ts";
import { readQueueStats } from "../queue_stats.ts";
import { describeError } from "../errors.ts";
import { redactUrl } from "../redact.ts";
import type { Topology } from "../topology.ts";

/** The counters the rates come from, by what they count. */
export const RATE_COUNTERS = {
  created: "productionorder_orders_created_total",
  retried: "productionorder_messages_retried_total",
  deadLettered: "productionorder_messages_dead_lettered_total",
} as const;

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
  /** For each source, `ok` or why it could not be read. */
  readonly sources: Readonly<Record<"broker" | "metrics" | "management" | "ledger", string>>;
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

/** Takes overviews; several viewers asking within a second share one. */
export class OverviewSampler {
  readonly #sources: OverviewSources;
  readonly #clock: () => number;
  #previous: { at: number; totals: Record<Counted, number | null> } | undefined;
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
    const [metrics, queues, publishRate, ledger] = await Promise.allSettled([
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
    ]);
    const why = (result: PromiseSettledResult<unknown>) =>
      result.status === "fulfilled" ? "ok" : redactUrl(describeError(result.reason));
    const totals = metrics.status === "fulfilled"
      ? metrics.value
      : { created: null, retried: null, deadLettered: null };
    const previous = this.#previous;
    this.#previous = { at: now, totals };
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
      sources: {
        broker: why(queues),
        metrics: why(metrics),
        management: why(publishRate),
        ledger: why(ledger),
      },
    };
  }

  /** The counters summed over every instance that answers; fails when none does. */
  async #scrape(): Promise<Record<Counted, number | null>> {
    const names = Object.values(RATE_COUNTERS);
    const answers = await Promise.allSettled(this.#sources.metricsUrls.map(async (url) => {
      const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      if (!response.ok) {
        await response.body?.cancel();
        throw new Error(`${url} answered ${response.status}`);
      }
      return sumMetrics(await response.text(), names);
    }));
    const read = answers.flatMap((a) => a.status === "fulfilled" ? [a.value] : []);
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
      created: total(RATE_COUNTERS.created),
      retried: total(RATE_COUNTERS.retried),
      deadLettered: total(RATE_COUNTERS.deadLettered),
    };
  }
}
