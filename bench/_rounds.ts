/**
 * The throughput rounds: for each path, the sweep picks each side's settings, then the timed runs
 * go round by round, raw and ours back to back (the control between them), which one first
 * alternating.
 *
 * @module
 */

import type { BenchOptions } from "./_options.ts";
import { describe, inTurn, type SideName } from "./_paths.ts";
import type { BenchRunner } from "./_runner.ts";
import type { RunResult } from "./_shared.ts";
import { type PathRuns, rate } from "./_stats.ts";
import { sweep } from "./_sweep.ts";
import { fmt, type Settings } from "./report.ts";

/** The timed runs of each path and the settings they ran at, by path name. */
export interface Throughput {
  readonly runs: Record<string, PathRuns>;
  readonly chosen: Record<string, Record<SideName, Settings>>;
}

/** Sweeps and runs the rounds of every path in `options.paths`, logging each round. */
export async function runPaths(runner: BenchRunner, options: BenchOptions): Promise<Throughput> {
  const log = (text: string) => console.error(text);
  const runs: Record<string, PathRuns> = {};
  const chosen: Record<string, Record<SideName, Settings>> = {};
  for (const path of options.paths) {
    const results: PathRuns = runs[path.name] = { raw: [], ours: [], control: [] };
    const rawSettings = await sweep(runner, options, path, "raw");
    const oursSettings = await sweep(runner, options, path, "ours");
    chosen[path.name] = { raw: rawSettings, ours: oursSettings };
    log(
      `  ${path.name}: raw ${describe(rawSettings, path.rawKnobs)}; ours ${
        describe(oursSettings, path.oursKnobs)
      }`,
    );
    const timed = {
      raw: () => runner.run(path.raw, { raw: rawSettings }),
      ours: () => runner.run(path.ours, { ours: oursSettings }),
    };
    for (let round = 0; round < options.rounds; round++) {
      const [first, second] = inTurn(round);
      const ran = {} as Record<SideName, RunResult>;
      ran[first] = await timed[first]();
      const control = path.control && await runner.run(path.control, { raw: rawSettings });
      ran[second] = await timed[second]();
      const { raw, ours } = ran;
      results.raw.push(raw);
      if (control) results.control.push(control);
      results.ours.push(ours);
      log(
        `  ${path.name} round ${round + 1}: raw ${fmt(rate(raw))}/s, ${
          control ? `raw with ours' copy ${fmt(rate(control))}/s, ` : ""
        }ours ${fmt(rate(ours))}/s`,
      );
    }
  }
  return { runs, chosen };
}
