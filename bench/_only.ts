/**
 * `--only <path>`: the one path's ratio printed (and its bare copy's), and with `--profile` one
 * more run of each side, each in its own process under the CPU profiler: where each one's time
 * went, as a table and as whole profiles.
 *
 * @module
 */

import { join } from "node:path";
import { writeDocBlock } from "../scripts/doc_block.ts";
import type { BenchOptions } from "./_options.ts";
import { type PathSpec, type Role, rolesOf } from "./_paths.ts";
import type { PathRow } from "./_results.ts";
import { sideProcess, timedRun } from "./_rounds.ts";
import type { Settings } from "./_settings.ts";
import type { RunResult } from "./_shared.ts";
import { rate } from "./_stats.ts";
import { type CpuProfile, profileTable } from "./profile.ts";
import { fmt, ratioText } from "./report.ts";

const interval = (r: { low: number; high: number; min: number; max: number }) =>
  `[${r.low.toFixed(2)}–${r.high.toFixed(2)}] (${r.min.toFixed(2)}–${r.max.toFixed(2)})`;

/** Prints the ratio of the one path run, and the bare copy's, to stdout. */
export function printOnly(row: PathRow): void {
  console.log(
    `${row.path}: raw ${fmt(row.raw.median)}/s, ours ${fmt(row.ours.median)}/s, ratio ${
      ratioText(row.ratio.median, row.target)
    } ${
      interval(row.ratio)
    } (median of ${row.ours.rates.length} paired runs [95 % interval] (range))`,
  );
  if (row.bare !== undefined) {
    console.log(
      `  raw with the bare copy ${fmt(row.bare.median)}/s: ours / that ${
        row.bare.oursToBare.median.toFixed(2)
      } ${interval(row.bare.oursToBare)}; raw with ours' copy / that ${
        row.bare.rawToBare.median.toFixed(2)
      } ${interval(row.bare.rawToBare)}`,
    );
  }
}

const LABELS: Record<Role, string> = { raw: "raw", bare: "raw, bare copy", ours: "ours" };

/**
 * One more run of each side of `path`, each in a fresh process of its own after a warm-up run,
 * under the CPU profiler: prints where each one's time went, writes each whole profile under
 * `options.profileOut`, and with `options.docs` the table into docs/performance.md.
 */
export async function profileOnly(
  options: BenchOptions,
  path: PathSpec,
  settings: Readonly<Record<Role, Settings>>,
): Promise<void> {
  const only = path.name;
  const dir = options.profileOut ?? await Deno.makeTempDir({ prefix: "productionorder-profile-" });
  const sides = [];
  for (const role of rolesOf(path)) {
    await using process = sideProcess(options, `${only} ${role} profiled`, role);
    const { method } = options;
    if (method.warmup > 0) {
      await timedRun(options, process, path, role, settings[role], method.warmup);
    }
    const file = join(dir, `${only.replaceAll(" ", "-")}-${role}.cpuprofile`);
    const result = await timedRun(options, process, path, role, settings[role], method.messages, {
      profile: file,
    }) as RunResult & { brokerMs: number; selfMs: number };
    const profile = JSON.parse(await Deno.readTextFile(file)) as CpuProfile;
    if (options.profileOut !== undefined) console.error(`  profile of ${LABELS[role]}: ${file}`);
    sides.push({
      label: LABELS[role],
      result,
      profile,
      messages: result.messages,
      brokerMs: result.brokerMs,
      selfMs: result.selfMs,
    });
  }
  if (options.profileOut === undefined) await Deno.remove(dir, { recursive: true });
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
      }, ${only}: one run of each side, each in its own process, under V8's sampling profiler ` +
        `(0.1 ms), after ${options.method.rounds} timed rounds; this run moved ${
          rates.join(", ")
        }. The difference is ours less raw.\n\n${table}`,
    );
  }
}
