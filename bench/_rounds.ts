/**
 * A throughput path, as the method says: raw tuned first by the sweep (in a process of its own,
 * runs as long as the timed ones), then each side in a fresh process of its own that makes one
 * untimed warm-up run, then the timed rounds in ABBA order, the broker let go idle before each run
 * and each process collecting its garbage.
 *
 * @module
 */

import type { BenchOptions } from "./_options.ts";
import { type PathSpec, type Role, rolesOf } from "./_paths.ts";
import { brokerQuiet } from "./_quiet.ts";
import type { SweepReport } from "./_results.ts";
import { sideOrder } from "./_method.ts";
import { describe, describeValue, type Knob, RAW_START, type Settings } from "./_settings.ts";
import type { RunResult } from "./_shared.ts";
import { SideProcess } from "./_side_process.ts";
import { serviceV8Flags } from "../testing/service_flags.ts";
import { type PathRuns, type PathSettings, rate } from "./_stats.ts";
import { coordinateSweep } from "./_sweep.ts";

const log = (text: string) => console.error(text);
const count = (n: number) => Math.round(n).toLocaleString("en-US");

/** A side's process: ours runs with the services' V8 flags, raw with V8's defaults. */
export function sideProcess(
  options: BenchOptions,
  name: string,
  role: Role,
  env?: Record<string, string>,
): SideProcess {
  return new SideProcess(name, {
    url: options.url,
    ...(role === "ours" ? { v8Flags: serviceV8Flags() } : {}),
    ...(env ? { env } : {}),
  });
}

/** One run of `role` on `path` in `process`, once the broker is idle. */
export async function timedRun(
  options: BenchOptions,
  process: SideProcess,
  path: PathSpec,
  role: Role,
  settings: Settings,
  messages: number,
  extra: { readonly park?: number; readonly profile?: string } = {},
): Promise<RunResult> {
  await brokerQuiet(options.url);
  return await process.request<RunResult>({
    kind: "run",
    path: path.name,
    role,
    settings,
    messages,
    ...extra,
  });
}

/** Raw's settings for `path`: the pins, the rest swept (unless nothing is left to sweep). */
export async function sweepRaw(
  options: BenchOptions,
  path: PathSpec,
): Promise<{ settings: Settings; sweep?: SweepReport }> {
  const start: Settings = { ...RAW_START, ...options.pins };
  const knobs = path.rawKnobs.filter((k: Knob) => options.pins[k] === undefined);
  if (knobs.length === 0) return { settings: start };
  const { method } = options;
  await using process = sideProcess(options, `raw sweep of ${path.name}`, "raw");
  if (method.warmup > 0) await timedRun(options, process, path, "raw", start, method.warmup);
  const outcome = await coordinateSweep(
    { start, knobs, passes: method.sweepPasses },
    async (settings) => {
      let sum = 0;
      for (let i = 0; i < method.sweepRuns; i++) {
        sum += rate(await timedRun(options, process, path, "raw", settings, method.messages));
      }
      const mean = sum / method.sweepRuns;
      log(`  ${path.name} sweep: raw ${describe(settings, knobs)}: ${count(mean)}/s`);
      return mean;
    },
  );
  const { around, atEdge, tried, passes } = outcome;
  return { settings: outcome.kept, sweep: { around, atEdge, tried, passes } };
}

/** Prints raw's kept settings on `path` and the grid around them. */
export function printSweep(path: PathSpec, settings: Settings, sweep: SweepReport | undefined) {
  log(`  ${path.name}: raw keeps ${describe(settings, path.rawKnobs)}`);
  if (sweep === undefined) return;
  for (
    const [knob, points] of Object.entries(sweep.around) as [Knob, typeof sweep.around.prefetch][]
  ) {
    const cells = points!.map((p) => {
      const text = `${describeValue(knob, p.value)} ${count(p.rate)}/s`;
      return p.value === settings[knob] ? `[${text}]` : text;
    });
    log(
      `    ${cells.join(" | ")}${sweep.atEdge.includes(knob) ? "  (kept at the grid's edge)" : ""}`,
    );
  }
}

/** Sweeps raw on `path`, then runs its rounds; logs each round. */
export async function runPath(
  options: BenchOptions,
  path: PathSpec,
): Promise<{ runs: PathRuns; settings: PathSettings }> {
  const { method } = options;
  const { settings: raw, sweep } = await sweepRaw(options, path);
  printSweep(path, raw, sweep);
  const settings: Record<Role, Settings> = { raw, bare: raw, ours: path.oursSettings };
  const roles = rolesOf(path);
  const processes = new Map<Role, SideProcess>();
  try {
    for (const role of roles) {
      processes.set(role, sideProcess(options, `${path.name} ${role}`, role));
    }
    // The warm-up: one untimed run of each side in its process, on this path.
    for (const role of roles) {
      if (method.warmup === 0) break;
      await timedRun(options, processes.get(role)!, path, role, settings[role], method.warmup);
    }
    const runs: PathRuns = { raw: [], ours: [], bare: [] };
    for (let round = 0; round < method.rounds; round++) {
      const ran = new Map<Role, RunResult>();
      for (const role of sideOrder(round, roles)) {
        const process = processes.get(role)!;
        ran.set(
          role,
          await timedRun(options, process, path, role, settings[role], method.messages),
        );
      }
      for (const role of roles) runs[role].push(ran.get(role)!);
      log(
        `  ${path.name} round ${round + 1} (${sideOrder(round, roles).join(", ")}): ` +
          roles.map((role) => `${role} ${count(rate(ran.get(role)!))}/s`).join(", "),
      );
    }
    return { runs, settings: { raw, ours: path.oursSettings, sweep } };
  } finally {
    for (const process of processes.values()) await process.close().catch(() => {});
  }
}
