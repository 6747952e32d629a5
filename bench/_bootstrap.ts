/**
 * The statistics of paired runs: each round ran both sides back to back, so the ratio of the two
 * in one round cancels what drifted between rounds; a path's ratio is the median of those paired
 * ratios, and how far it can be trusted is a bootstrap interval of that median. Pure: randomness
 * is passed in, so a fixed seed gives a fixed interval.
 *
 * @module
 */

/**
 * A seeded pseudo-random generator (mulberry32): numbers in [0, 1), the same sequence for the
 * same seed.
 */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** The median: the middle value, or the mean of the two middle ones; NaN for none. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = values.toSorted((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * The ratios of `a` to `b` round by round.
 *
 * @throws {RangeError} when the two do not have as many runs.
 */
export function pairedRatios(a: readonly number[], b: readonly number[]): number[] {
  if (a.length !== b.length) {
    throw new RangeError(
      `paired runs must be as many on both sides, got ${a.length} and ${b.length}`,
    );
  }
  return a.map((x, i) => x / b[i]!);
}

/** Options for {@linkcode bootstrapInterval}. */
export interface BootstrapOptions {
  /** Numbers in [0, 1): pass a {@linkcode seededRandom} for a result that repeats. */
  readonly random: () => number;
  /**
   * How many resamples.
   * @default {10000}
   */
  readonly resamples?: number;
  /**
   * The interval's coverage.
   * @default {0.95}
   */
  readonly confidence?: number;
  /**
   * The statistic.
   * @default {median}
   */
  readonly statistic?: (values: readonly number[]) => number;
}

/** An interval: its low and high ends. */
export interface Interval {
  readonly low: number;
  readonly high: number;
}

/**
 * The percentile bootstrap interval of a statistic of `values` (their median unless told): the
 * statistic of `resamples` samples drawn from `values` with replacement, as many as `values`, and
 * the middle `confidence` of those.
 *
 * @example
 * ```ts
 * bootstrapInterval([0.91, 0.95, 0.97, 1.02], { random: seededRandom(1) });
 * // { low: 0.93, high: 0.995 } or thereabouts: the same for the same seed
 * ```
 *
 * @throws {RangeError} for no values, a confidence outside (0, 1) or fewer than 1 resample.
 */
export function bootstrapInterval(values: readonly number[], options: BootstrapOptions): Interval {
  const { random, resamples = 10_000, confidence = 0.95, statistic = median } = options;
  if (values.length === 0) throw new RangeError("bootstrapInterval() needs at least one value");
  if (!(confidence > 0 && confidence < 1)) {
    throw new RangeError(`confidence must be between 0 and 1, got ${confidence}`);
  }
  if (!Number.isInteger(resamples) || resamples < 1) {
    throw new RangeError(`resamples must be a positive integer, got ${resamples}`);
  }
  const n = values.length;
  const sample = new Array<number>(n);
  const stats = new Float64Array(resamples);
  for (let r = 0; r < resamples; r++) {
    for (let i = 0; i < n; i++) sample[i] = values[Math.floor(random() * n)]!;
    stats[r] = statistic(sample);
  }
  stats.sort();
  const tail = (1 - confidence) / 2;
  return {
    low: stats[Math.min(resamples - 1, Math.floor(tail * resamples))]!,
    high: stats[Math.max(0, Math.ceil((1 - tail) * resamples) - 1)]!,
  };
}

/** A paired comparison: the median of the ratios, its interval, and their range. */
export interface PairedRatio {
  /** The median of the paired ratios. */
  readonly median: number;
  /** Its 95 % bootstrap interval. */
  readonly low: number;
  readonly high: number;
  /** The lowest and the highest paired ratio. */
  readonly min: number;
  readonly max: number;
}

/**
 * `a` against `b`, run by run: the median of the paired ratios with its 95 % bootstrap interval
 * (`resamples`, seeded by `seed`, so the same runs give the same interval) and their range.
 */
export function pairedRatio(
  a: readonly number[],
  b: readonly number[],
  resamples = 10_000,
  seed = 1,
): PairedRatio {
  const ratios = pairedRatios(a, b);
  const { low, high } = bootstrapInterval(ratios, { random: seededRandom(seed), resamples });
  return {
    median: median(ratios),
    low,
    high,
    min: Math.min(...ratios),
    max: Math.max(...ratios),
  };
}
