/**
 * `--only <path>`: the one path's ratio (and its control's) printed, and with `--profile` one more
 * run of each side under the CPU profiler: where each one's time went, table and whole profiles.
 *
 * @module
 */

import { join } from "node:path";
import { writeDocBlock } from "../scripts/doc_block.ts";
import type { BenchOptions } from "./_options.ts";
import type { PathSpec, Side, SideName } from "./_paths.ts";
import type { BenchRunner, RunOptions } from "./_runner.ts";
import { paired, type PathRuns, rate, stats } from "./_stats.ts";
import { cpuDuring, profiled, profileTable } from "./profile.ts";
import { fmt, ratioText, type Settings } from "./report.ts";

/** Prints the ratio of the one path run, and what its control tells, to stdout. */
export function printOnly(path: PathSpec, runs: PathRuns): void {
  const raw = stats(runs.raw);
  const ours = stats(runs.ours);
  const ratios = paired(ours, raw);
  console.log(
    `${path.name}: raw ${fmt(raw.median)}/s, ours ${fmt(ours.median)}/s, ratio ${
      ratioText(ratios.median, path.target)
    } (median of ${ours.rates.length} paired runs; ${ratios.min.toFixed(2)}-${
      ratios.max.toFixed(2)
    })`,
  );
  if (runs.control.length > 0) {
    const control = stats(runs.control);
    const vsControl = paired(ours, control);
    const carried = paired(control, raw);
    console.log(
      `  raw publishing ours' copy ${fmt(control.median)}/s: ours / that ${
        vsControl.median.toFixed(2)
      } (${vsControl.min.toFixed(2)}-${vsControl.max.toFixed(2)}); that / raw ${
        carried.median.toFixed(2)
      } (${carried.min.toFixed(2)}-${carried.max.toFixed(2)})`,
    );
  }
}

/**
 * One more run of each side of `path` (and of its control) under the CPU profiler, at the settings
 * the sweep kept: prints where each one's time went, writes each whole profile under
 * `options.profileOut`, and with `options.docs` the table into docs/performance.md.
 */
export async function profileOnly(
  runner: BenchRunner,
  options: BenchOptions,
  path: PathSpec,
  settings: Readonly<Record<SideName, Settings>>,
): Promise<void> {
  const only = path.name;
  /** One profiled run; its profile goes to `<path>-<name>.cpuprofile` under --profile-out. */
  const measured = async (label: string, name: string, side: Side, runOptions: RunOptions) => {
    const cpu = await cpuDuring(() => profiled(() => runner.run(side, runOptions)));
    const { result, profile } = cpu.result;
    return {
      label,
      name,
      result,
      profile,
      messages: result.messages,
      brokerMs: cpu.brokerMs,
      selfMs: cpu.selfMs,
    };
  };
  const sides = [await measured("raw", "raw", path.raw, { raw: settings.raw })];
  if (path.control) {
    sides.push(
      await measured("raw with ours' copy", "control", path.control, { raw: settings.raw }),
    );
  }
  sides.push(await measured("ours", "ours", path.ours, { ours: settings.ours }));
  if (options.profileOut !== undefined) {
    for (const side of sides) {
      const out = join(options.profileOut, `${only.replaceAll(" ", "-")}-${side.name}.cpuprofile`);
      await Deno.writeTextFile(out, JSON.stringify(side.profile));
      console.error(`  profile of ${side.label}: ${out}`);
    }
  }
  const rates = sides.map((side) => `${fmt(rate(side.result))}/s ${side.label}`);
  console.log(`\n${only}, one run each under the profiler (${rates.join(", ")}):\n`);
  const table = profileTable(sides);
  console.log(table);
  if (options.docs) {
    await writeDocBlock(
      "performance.md",
      `profile-${only}`,
      `\`deno task bench ${Deno.args.join(" ")}\` on ${
        new Date().toISOString().slice(0, 10)
      }, ${only}: one run of each side under V8's sampling profiler (0.1 ms), after ` +
        `${options.rounds} timed rounds; this run moved ${rates.join(", ")}. The difference is ` +
        `ours less raw.\n\n${table}`,
    );
  }
}
