/**
 * Prometheus histograms as the console reads them from OrdemDeProducao's /metrics: the cumulative
 * bucket counts of one histogram summed over every instance, the counts between two readings, and
 * a quantile of those as Prometheus' `histogram_quantile()` computes it (linear within a bucket).
 *
 * @module
 */

/** Cumulative counts by upper bound (`le`, `Infinity` for `+Inf`), ascending. */
export type Buckets = readonly (readonly [le: number, count: number])[];

/**
 * The buckets of histogram `name` in a text exposition, summed over its series whose labels
 * include `labels` (every instance, every other label).
 */
export function readBuckets(
  text: string,
  name: string,
  labels: Readonly<Record<string, string>> = {},
): Buckets {
  const prefix = `${name}_bucket{`;
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  const sums = new Map<number, number>();
  for (const line of text.split("\n")) {
    if (!line.startsWith(prefix)) continue;
    const close = line.lastIndexOf("}");
    const inside = line.slice(prefix.length, close);
    if (!wanted.every((pair) => inside.includes(pair))) continue;
    const le = /(?:^|,)le="([^"]+)"/.exec(inside)?.[1];
    if (le === undefined) continue;
    const bound = le === "+Inf" ? Infinity : Number(le);
    const count = Number(line.slice(close + 1).trim());
    if (!Number.isNaN(bound) && Number.isFinite(count)) {
      sums.set(bound, (sums.get(bound) ?? 0) + count);
    }
  }
  return [...sums].sort((a, b) => a[0] - b[0]);
}

/**
 * The counts of `after` less those of `before`, bound by bound: what was observed between two
 * readings. A count that went down (an instance restarted) counts from zero.
 */
export function bucketsBetween(before: Buckets, after: Buckets): Buckets {
  const earlier = new Map(before);
  const counts = after.map(([le, count]) => {
    const was = earlier.get(le) ?? 0;
    return [le, count >= was ? count - was : count] as const;
  });
  // A restart can leave a lower bucket with more than a higher one: counts are cumulative.
  for (let i = 1; i < counts.length; i++) {
    if (counts[i]![1] < counts[i - 1]![1]) counts[i] = [counts[i]![0], counts[i - 1]![1]];
  }
  return counts;
}

/**
 * The `q`-quantile (0..1) of cumulative `buckets`, as `histogram_quantile()`: linear within the
 * bucket it falls in (from 0 for the first), the highest finite bound when it falls in `+Inf`;
 * null when nothing was observed.
 *
 * @example
 * ```ts
 * histogramQuantile(0.5, [[0.01, 0], [0.02, 10], [Infinity, 10]]); // 0.015
 * ```
 */
export function histogramQuantile(q: number, buckets: Buckets): number | null {
  const total = buckets.at(-1)?.[1] ?? 0;
  if (total === 0) return null;
  const rank = q * total;
  let lowerBound = 0;
  let lowerCount = 0;
  for (const [le, count] of buckets) {
    if (count >= rank) {
      if (le === Infinity) return lowerBound;
      if (count === lowerCount) return le;
      return lowerBound + (le - lowerBound) * ((rank - lowerCount) / (count - lowerCount));
    }
    lowerBound = le;
    lowerCount = count;
  }
  return lowerBound;
}
