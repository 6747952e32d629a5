/**
 * Latencies as a histogram of logarithmic bins: what a side's process sends back instead of every
 * latency, merged across rounds, read for percentiles (to within a bin, 2.3 % wide) and drawn.
 * Plain data, so it travels as JSON. Pure.
 *
 * @module
 */

/** The lower edge of the first bin, in milliseconds: faster latencies count in it. */
const FLOOR_MS = 0.01;

/** Latencies in milliseconds, counted in bins `perDecade` to a factor of ten. */
export interface Histogram {
  /** Bins per factor of ten: bin i holds [FLOOR·10^(i/perDecade), FLOOR·10^((i+1)/perDecade)). */
  readonly perDecade: number;
  /** The count in each bin, from the first. */
  readonly counts: number[];
  /** How many latencies in all. */
  total: number;
  /** The largest, exactly. */
  max: number;
}

/** An empty histogram of `perDecade` bins to a factor of ten. */
export function emptyHistogram(perDecade = 100): Histogram {
  return { perDecade, counts: [], total: 0, max: 0 };
}

/** The bin a latency falls in. */
function binOf(h: Histogram, ms: number): number {
  return ms <= FLOOR_MS ? 0 : Math.floor(Math.log10(ms / FLOOR_MS) * h.perDecade);
}

/** The upper edge of bin `i`, in milliseconds. */
export function upperEdge(h: Histogram, i: number): number {
  return FLOOR_MS * 10 ** ((i + 1) / h.perDecade);
}

/** Counts one latency, in milliseconds. */
export function record(h: Histogram, ms: number): void {
  const i = binOf(h, ms);
  while (h.counts.length <= i) h.counts.push(0);
  h.counts[i]!++;
  h.total++;
  if (ms > h.max) h.max = ms;
}

/**
 * The histograms added up.
 *
 * @throws {RangeError} when their bins differ.
 */
export function merge(histograms: readonly Histogram[]): Histogram {
  const out = emptyHistogram(histograms[0]?.perDecade);
  for (const h of histograms) {
    if (h.perDecade !== out.perDecade) {
      throw new RangeError(`cannot merge ${h.perDecade} and ${out.perDecade} bins a decade`);
    }
    h.counts.forEach((n, i) => {
      while (out.counts.length <= i) out.counts.push(0);
      out.counts[i]! += n;
    });
    out.total += h.total;
    out.max = Math.max(out.max, h.max);
  }
  return out;
}

/**
 * The q-quantile (0..1), as the upper edge of the bin it falls in (never past the largest
 * latency): within a bin's width above the exact value. NaN when empty.
 */
export function quantileOf(h: Histogram, q: number): number {
  if (h.total === 0) return Number.NaN;
  const rank = Math.max(1, Math.ceil(q * h.total));
  let seen = 0;
  for (let i = 0; i < h.counts.length; i++) {
    seen += h.counts[i]!;
    if (seen >= rank) return Math.min(upperEdge(h, i), h.max);
  }
  return h.max;
}

/** The tail a latency row reports, in milliseconds. */
export interface LatencyTail {
  readonly p50: number;
  readonly p99: number;
  readonly p999: number;
  readonly max: number;
  /** How many latencies. */
  readonly count: number;
}

/** p50, p99, p99.9 and max of a histogram. */
export function tailOf(h: Histogram): LatencyTail {
  return {
    p50: quantileOf(h, 0.5),
    p99: quantileOf(h, 0.99),
    p999: quantileOf(h, 0.999),
    max: h.max,
    count: h.total,
  };
}

/**
 * The same latencies in fewer, wider bins (`perDecade` must divide the histogram's), for a plot.
 *
 * @throws {RangeError} when it does not divide.
 */
export function coarsen(h: Histogram, perDecade: number): Histogram {
  if (h.perDecade % perDecade !== 0) {
    throw new RangeError(`${perDecade} bins a decade do not divide ${h.perDecade}`);
  }
  const factor = h.perDecade / perDecade;
  const out: Histogram = { perDecade, counts: [], total: h.total, max: h.max };
  h.counts.forEach((n, i) => {
    const j = Math.floor(i / factor);
    while (out.counts.length <= j) out.counts.push(0);
    out.counts[j]! += n;
  });
  return out;
}
