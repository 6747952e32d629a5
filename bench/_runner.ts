/**
 * How a side's process runs a side: each run in a fresh topology of its own, deleted afterwards,
 * with the context that carries the run's size and the side's settings.
 *
 * @module
 */

import type { Settings } from "./_settings.ts";
import { type RunContext, type RunResult, withBenchTopology } from "./_shared.ts";

/** One run's size and settings. */
export interface RunOptions {
  /** The settings of the side that runs. */
  readonly settings: Settings;
  /** Messages in the run. */
  readonly messages: number;
  /** The retry delays of the run's topology; the bench topology's when undefined. */
  readonly retryDelays?: readonly number[];
  /** Where our ledger's commit times go, when the run records them. */
  readonly commitTimes?: number[];
}

/** Runs sides on one broker, each run in a topology of its own. */
export class BenchRunner {
  readonly #url: string;
  readonly #dir: string;

  /** A runner on `url`, with `dir` for scratch files (ledgers). */
  constructor(url: string, dir: string) {
    this.#url = url;
    this.#dir = dir;
  }

  /** The scratch directory. */
  get dir(): string {
    return this.#dir;
  }

  /** Runs `fn` in a fresh topology with the context `options` make. */
  inTopology<T>(fn: (ctx: RunContext) => Promise<T>, options: RunOptions): Promise<T> {
    return withBenchTopology(this.#url, (broker, topo) =>
      fn({
        url: this.#url,
        broker,
        topo,
        messages: options.messages,
        dir: this.#dir,
        settings: options.settings,
        ...(options.commitTimes ? { commitTimes: options.commitTimes } : {}),
      }), options.retryDelays);
  }

  /** One timed run of a side; `before` is untimed set-up in the run's topology. */
  run(
    side: (ctx: RunContext) => Promise<RunResult>,
    options: RunOptions & { readonly before?: (ctx: RunContext) => Promise<void> },
  ): Promise<RunResult> {
    return this.inTopology(async (ctx) => {
      await options.before?.(ctx);
      return await side(ctx);
    }, options);
  }
}
