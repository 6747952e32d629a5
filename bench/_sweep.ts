/**
 * The sweep that puts raw at its best before a path's timed rounds: one knob at a time, every
 * value of its grid with the other knobs at the best so far, keeping the fastest; pass after pass
 * until one changes nothing. Then every value of every knob is known around what was kept: the
 * grid the report shows, and whether a kept value sits at its low edge. The runs are given as a
 * function, so the search is tested without a broker.
 *
 * @module
 */

import { GRID, type Knob, type Settings, settingsKey, UNLIMITED } from "./_settings.ts";

/** One value of a knob and the rate raw reached with it (the other knobs as kept). */
export interface GridPoint {
  readonly value: Settings[Knob];
  /** Messages a second: the mean of the runs at that setting. */
  readonly rate: number;
}

/** What the sweep found. */
export interface SweepOutcome {
  /** The fastest settings found. */
  readonly kept: Settings;
  /** For each knob swept, each of its values' rate with the other knobs as kept. */
  readonly around: Readonly<Partial<Record<Knob, readonly GridPoint[]>>>;
  /**
   * The sizes (prefetch, window) whose kept value is the lowest of its grid, or its highest where
   * that is not unlimited: the best may lie beyond the grid.
   */
  readonly atEdge: readonly Knob[];
  /** How many settings were run. */
  readonly tried: number;
  /** Passes made over the knobs. */
  readonly passes: number;
}

/** What the sweep searches. */
export interface SweepPlan {
  /** Where it starts, pinned knobs included. */
  readonly start: Settings;
  /** The knobs it may change. */
  readonly knobs: readonly Knob[];
  /** Passes at most. */
  readonly passes: number;
  /** The values of each knob. */
  readonly grid?: { readonly [K in Knob]: readonly Settings[K][] };
}

/**
 * Searches `plan.knobs` one at a time from `plan.start`, `rateOf(settings)` giving the rate of a
 * setting (called once per distinct setting).
 */
export async function coordinateSweep(
  plan: SweepPlan,
  rateOf: (settings: Settings) => Promise<number>,
): Promise<SweepOutcome> {
  const grid = plan.grid ?? GRID;
  const measured = new Map<string, number>();
  const measure = async (settings: Settings) => {
    const key = settingsKey(settings);
    let rate = measured.get(key);
    if (rate === undefined) {
      rate = await rateOf(settings);
      measured.set(key, rate);
    }
    return rate;
  };
  const valuesOf = (knob: Knob) => grid[knob] as readonly Settings[Knob][];
  const at = (base: Settings, knob: Knob, value: Settings[Knob]): Settings => ({
    ...base,
    [knob]: value,
  });
  let kept = plan.start;
  let passes = 0;
  while (passes < plan.passes && plan.knobs.length > 0) {
    passes++;
    let changed = false;
    for (const knob of plan.knobs) {
      let best = { value: kept[knob], rate: await measure(kept) };
      for (const value of valuesOf(knob)) {
        const rate = await measure(at(kept, knob, value));
        if (rate > best.rate) best = { value, rate };
      }
      if (best.value !== kept[knob]) {
        kept = at(kept, knob, best.value);
        changed = true;
      }
    }
    if (!changed) break;
  }
  // Every value of every knob around what was kept; where one of them is faster (the passes ran
  // out before one changed nothing), move there and look around again.
  let around: Partial<Record<Knob, GridPoint[]>> = {};
  for (let moves = 0;; moves++) {
    around = {};
    let better: Settings | undefined;
    let bestRate = await measure(kept);
    for (const knob of plan.knobs) {
      const points: GridPoint[] = [];
      for (const value of valuesOf(knob)) {
        const rate = await measure(at(kept, knob, value));
        points.push({ value, rate });
        if (rate > bestRate) [better, bestRate] = [at(kept, knob, value), rate];
      }
      around[knob] = points;
    }
    if (better === undefined || moves === plan.knobs.length) break;
    kept = better;
  }
  const atEdge = plan.knobs.filter((knob) => {
    const values = valuesOf(knob);
    const last = values.at(-1);
    return (knob === "prefetch" || knob === "window") && values.length > 1 &&
      (kept[knob] === values[0] || (kept[knob] === last && last !== UNLIMITED));
  });
  return { kept, around, atEdge, tried: measured.size, passes };
}
