/**
 * How the benchmark runs a side: each run in a fresh topology of its own, with the context that
 * carries the run's size and both sides' settings.
 *
 * @module
 */

import type { SideName } from "./_paths.ts";
import { type RunContext, type RunResult, withBenchTopology } from "./_shared.ts";
import type { Settings } from "./report.ts";

/** What a run changes from the runner's defaults. */
export interface RunOptions {
  /** The raw side's settings. */
  readonly raw?: Settings;
  /** Our side's settings. */
  readonly ours?: Settings;
  /** Messages in the run. */
  readonly messages?: number;
  /** The retry delays of the run's topology; the bench topology's when undefined. */
  readonly retryDelays?: readonly number[];
}

/** What every run of a benchmark shares. */
export interface BenchRunnerOptions {
  /** The broker. */
  readonly url: string;
  /** A scratch directory (ledgers, the fsync probe). */
  readonly dir: string;
  /** Messages per timed run. */
  readonly messages: number;
  /** Each side's settings unless a run gives others. */
  readonly defaults: Readonly<Record<SideName, Settings>>;
}

/** Runs sides, each in a topology of its own, deleted afterwards. */
export class BenchRunner {
  readonly #options: BenchRunnerOptions;

  /** A runner on `options.url`. */
  constructor(options: BenchRunnerOptions) {
    this.#options = options;
  }

  /** The scratch directory. */
  get dir(): string {
    return this.#options.dir;
  }

  /** Runs `fn` in a fresh topology with the context those settings make. */
  inTopology<T>(fn: (ctx: RunContext) => Promise<T>, options: RunOptions = {}): Promise<T> {
    const { url, dir, defaults } = this.#options;
    const { raw = defaults.raw, ours = defaults.ours } = options;
    return withBenchTopology(url, (broker, topo) =>
      fn({
        url,
        broker,
        topo,
        messages: options.messages ?? this.#options.messages,
        dir,
        prefetch: ours.prefetch,
        window: ours.window,
        rawPrefetch: raw.prefetch,
        rawWindow: raw.window,
      }), options.retryDelays);
  }

  /** One timed run of a side; `before` is untimed set-up in the run's topology. */
  run(
    side: (ctx: RunContext) => Promise<RunResult>,
    options: RunOptions & { before?: (ctx: RunContext) => Promise<void> } = {},
  ): Promise<RunResult> {
    return this.inTopology(async (ctx) => {
      await options.before?.(ctx);
      return await side(ctx);
    }, options);
  }
}
