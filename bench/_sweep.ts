/**
 * The sweep: before a path's timed rounds, each side runs once per combination of the values of
 * the settings that change it (those not pinned by a flag), and keeps the fastest.
 *
 * @module
 */

import type { BenchOptions } from "./_options.ts";
import { type PathSpec, type SideName, SWEEP } from "./_paths.ts";
import type { BenchRunner } from "./_runner.ts";
import { rate } from "./_stats.ts";
import type { Settings } from "./report.ts";

/** The settings of `which` side of `path` that ran fastest; its defaults when nothing is swept. */
export async function sweep(
  runner: BenchRunner,
  options: BenchOptions,
  path: PathSpec,
  which: SideName,
): Promise<Settings> {
  const { sweepRuns, shortRunMessages } = options;
  let candidates: Settings[] = [options.defaults[which]];
  for (const knob of which === "raw" ? path.rawKnobs : path.oursKnobs) {
    if (options.pins[which][knob]) continue;
    candidates = candidates.flatMap((c) => SWEEP[knob].map((v) => ({ ...c, [knob]: v })));
  }
  if (candidates.length === 1) return candidates[0]!;
  let best = { settings: candidates[0]!, rate: 0 };
  for (const settings of candidates) {
    // One run moves by up to half either way on this kind of machine: a full run averages two.
    let sum = 0;
    for (let i = 0; i < sweepRuns; i++) {
      sum += rate(
        which === "raw"
          ? await runner.run(path.raw, { raw: settings, messages: shortRunMessages })
          : await runner.run(path.ours, { ours: settings, messages: shortRunMessages }),
      );
    }
    if (sum / sweepRuns > best.rate) best = { settings, rate: sum / sweepRuns };
  }
  return best.settings;
}
