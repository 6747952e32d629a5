/**
 * From timed runs to the rows of the results: each side's rates, and ours against raw as the
 * median of the paired ratios with its bootstrap interval. Pure.
 *
 * @module
 */

import { median, pairedRatio } from "./_bootstrap.ts";
import type { PathSpec } from "./_paths.ts";
import type { PathRow, SideStats, SweepReport } from "./_results.ts";
import type { Settings } from "./_settings.ts";
import type { RunResult } from "./_shared.ts";

/** Messages a second of one run. */
export const rate = (r: RunResult): number => r.messages / (r.elapsedMs / 1000);

/** The rates of runs (or rates as they are), their median and range. */
export function sideStats(runs: readonly (RunResult | number)[]): SideStats {
  const rates = runs.map((r) => typeof r === "number" ? r : rate(r));
  return { rates, median: median(rates), min: Math.min(...rates), max: Math.max(...rates) };
}

/** The timed runs of one path, round by round. */
export interface PathRuns {
  readonly raw: RunResult[];
  readonly ours: RunResult[];
  /** Raw with the bare copy; empty where the path has none. */
  readonly bare: RunResult[];
}

/** How a path's sides ran: raw's settings and how they were found, ours'. */
export interface PathSettings {
  readonly raw: Settings;
  readonly ours: Settings;
  readonly sweep?: SweepReport | undefined;
}

/** A throughput path's row: each side's rates and ours against raw, paired round by round. */
export function pathRow(
  path: PathSpec,
  runs: PathRuns,
  settings: PathSettings,
  resamples: number,
): PathRow {
  const raw = sideStats(runs.raw);
  const ours = sideStats(runs.ours);
  const ratio = pairedRatio(ours.rates, raw.rates, resamples);
  const bare = runs.bare.length === 0 ? undefined : sideStats(runs.bare);
  return {
    path: path.name,
    what: path.what,
    target: path.target,
    raw,
    ours,
    ratio,
    met: ratio.median >= path.target,
    ...(bare === undefined ? {} : {
      bare: {
        ...bare,
        oursToBare: pairedRatio(ours.rates, bare.rates, resamples),
        rawToBare: pairedRatio(raw.rates, bare.rates, resamples),
      },
    }),
    rawSettings: settings.raw,
    rawKnobs: path.rawKnobs,
    oursSettings: settings.ours,
    ...(settings.sweep === undefined ? {} : { sweep: settings.sweep }),
  };
}
