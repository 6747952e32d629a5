/**
 * The overview's recent past, for its charts: a point every few seconds (5 by default) of the
 * last hour, kept in the console's memory only (a restarted console starts a new one; Prometheus
 * keeps the long history). Each point holds the rates over the interval before it (published,
 * created, retried, dead-lettered a second), every queue's depth, and the critical time's p50 and
 * p99 of the orders created in the minute before it. Points are taken whether or not a page
 * looks, from the same overview the page is pushed (so a viewer adds no scrape).
 *
 * @module
 */

import type { Overview } from "./overview.ts";

/** One point of the charts. Numbers are null where their source could not be read. */
export interface FlowPoint {
  /** When (epoch milliseconds). */
  readonly at: number;
  /** Messages a second over the interval before `at`. */
  readonly published: number | null;
  readonly created: number | null;
  readonly retried: number | null;
  readonly deadLettered: number | null;
  /** Ready messages by queue role (`work`, `retry-<ms>ms`, `dlq`). */
  readonly depth: Readonly<Record<string, number>> | null;
  /** Critical time of the orders created in the minute before `at`, in seconds. */
  readonly p50: number | null;
  readonly p99: number | null;
}

/** Options for {@linkcode FlowHistory}. */
export interface FlowHistoryOptions {
  /** An overview (shared with the page's). */
  readonly sample: () => Promise<Overview>;
  /** How often a point is taken, in milliseconds. @default {5000} */
  readonly intervalMs?: number;
  /** How far back points are kept, in milliseconds. @default {3600000} */
  readonly keepMs?: number;
  /** The wall clock, epoch milliseconds. @default {Date.now} */
  readonly now?: () => number;
}

type Totals = Overview["totals"];

/** The last hour of points; {@linkcode FlowHistory.start} takes them until stopped. */
export class FlowHistory implements Disposable {
  readonly #options: FlowHistoryOptions;
  readonly #points: FlowPoint[] = [];
  #previous: { at: number; totals: Totals } | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  #taking = false;

  /** Takes nothing until started. */
  constructor(options: FlowHistoryOptions) {
    this.#options = options;
  }

  /** How often a point is taken, in milliseconds. */
  get intervalMs(): number {
    return this.#options.intervalMs ?? 5_000;
  }

  /** Takes a point now, then one every interval, until stopped. */
  start(): void {
    if (this.#timer !== undefined) return;
    void this.take();
    this.#timer = setInterval(() => void this.take(), this.intervalMs);
  }

  /** Takes one point (skipped while the one before is still being taken). */
  async take(): Promise<void> {
    if (this.#taking) return;
    this.#taking = true;
    try {
      const overview = await this.#options.sample();
      this.#add(overview);
    } catch {
      // The overview says why its sources failed; a point is simply missing.
    } finally {
      this.#taking = false;
    }
  }

  #add(overview: Overview): void {
    const now = (this.#options.now ?? Date.now)();
    const previous = this.#previous;
    this.#previous = { at: now, totals: overview.totals };
    const rate = (name: keyof Totals): number | null => {
      const before = previous?.totals[name];
      const after = overview.totals[name];
      if (previous === undefined || before == null || after == null || now <= previous.at) {
        return null;
      }
      // A counter that went down is an instance that restarted: count from zero.
      return (after >= before ? after - before : after) / ((now - previous.at) / 1000);
    };
    this.#points.push({
      at: now,
      published: overview.rates.published,
      created: rate("created"),
      retried: rate("retried"),
      deadLettered: rate("deadLettered"),
      depth: overview.depth,
      p50: overview.criticalTime?.created.p50 ?? null,
      p99: overview.criticalTime?.created.p99 ?? null,
    });
    const keepFrom = now - (this.#options.keepMs ?? 3_600_000);
    while (this.#points.length > 0 && this.#points[0]!.at < keepFrom) this.#points.shift();
  }

  /** The points kept, oldest first; with `after`, only those taken after it. */
  points(after?: number): FlowPoint[] {
    if (after === undefined) return [...this.#points];
    return this.#points.filter((p) => p.at > after);
  }

  /** Stops taking points (those kept stay). */
  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Stops taking points. */
  [Symbol.dispose](): void {
    this.stop();
  }
}
